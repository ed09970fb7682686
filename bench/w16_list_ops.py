def main():
    xs = []
    for i in range(1_000_000):
        xs.append((i * 7919) % 1000003)
    odd = 0
    for x in xs:
        if x % 2 == 1:
            odd += 1
    ys = sorted(xs)
    print(odd, sum(xs), ys[0], ys[len(ys) - 1])
main()
