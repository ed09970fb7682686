def main():
    m = {}
    for i in range(1_000_000):
        m[i] = i * 2
    total = 0
    for i in range(1_000_000):
        total += m[i]
    print(len(m), total)
main()
