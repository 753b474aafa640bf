"""Allocates 400 MiB in 10 MiB steps; the registry limits it to 100 MB."""
blocks = []
for _ in range(40):
    blocks.append(bytearray(10 * 1024 * 1024))
print("allocated", len(blocks) * 10, "MiB")
