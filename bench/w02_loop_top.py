i = 0
s = 0
while i < 10_000_000:
    s += i
    i += 1
print(s)
