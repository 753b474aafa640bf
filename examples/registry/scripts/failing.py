def parse(record):
    return int(record["count"])


parse({"count": "twelve"})
