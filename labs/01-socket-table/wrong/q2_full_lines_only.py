"""Expects every line to have all the columns of a full socket, and so skips TIME_WAIT lines,
which the kernel writes shorter."""


def parse_socket_table(text, clock_ticks=100):
    sockets = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 17:
            continue
        timer_code, ticks = fields[5].split(":")
        timer = TIMERS[int(timer_code, 16)]
        sockets.append(
            {
                "local": parse_address(fields[1]),
                "remote": parse_address(fields[2]),
                "state": STATES[int(fields[3], 16)],
                "timer": timer,
                "expires_s": int(ticks, 16) / clock_ticks if timer != "off" else 0.0,
            }
        )
    return sockets
