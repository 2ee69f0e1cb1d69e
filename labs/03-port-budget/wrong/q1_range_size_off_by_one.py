"""Counts the ports of a range as high - low, leaving out one end."""


def ceiling_rate(port_range, time_wait_s):
    low, high = port_range
    return (high - low) / time_wait_s


def seconds_until_exhausted(rate, port_range, time_wait_s):
    low, high = port_range
    ports = high - low
    if rate <= ports / time_wait_s:
        return None
    return ports / rate
