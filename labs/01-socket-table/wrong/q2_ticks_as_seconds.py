"""Reports the timer's tick count as seconds."""


def parse_socket_table(text, clock_ticks=100):
    sockets = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 6:
            continue
        timer_code, ticks = fields[5].split(":")
        timer = TIMERS[int(timer_code, 16)]
        sockets.append(
            {
                "local": parse_address(fields[1]),
                "remote": parse_address(fields[2]),
                "state": STATES[int(fields[3], 16)],
                "timer": timer,
                "expires_s": float(int(ticks, 16)) if timer != "off" else 0.0,
            }
        )
    return sockets
