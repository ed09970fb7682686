def main():
    parts = []
    for i in range(200_000):
        parts.append(f"item {i}: {i * 2}")
    text = ",".join(parts)
    back = text.split(",")
    print(len(text), len(back), back[199999])
main()
