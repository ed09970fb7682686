s = ""
for i in range(100_000):
    s += "ab"
print(len(s))
