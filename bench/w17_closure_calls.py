def adder(k):
    return lambda x: x + k
def main():
    add = adder(3)
    total = 0
    for i in range(1_000_000):
        total = add(total)
    print(total)
main()
