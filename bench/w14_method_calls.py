class Acc:
    def __init__(self):
        self.total = 0
    def add(self, i):
        self.total += i
def main():
    acc = Acc()
    for i in range(1_000_000):
        acc.add(i)
    print(acc.total)
main()
