"""Treats exhaustion as a net drain (ports used minus ports freed per second), although no
port comes back before the first TIME_WAIT has run out."""


def ceiling_rate(port_range, time_wait_s):
    low, high = port_range
    return (high - low + 1) / time_wait_s


def seconds_until_exhausted(rate, port_range, time_wait_s):
    low, high = port_range
    ports = high - low + 1
    ceiling = ports / time_wait_s
    if rate <= ceiling:
        return None
    return ports / (rate - ceiling)
