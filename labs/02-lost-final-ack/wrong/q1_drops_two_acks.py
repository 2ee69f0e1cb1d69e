"""Drops the client's final ACK and the next one too (count=2), not the final ACK alone."""


def lost_final_ack(lab, time_wait, client_port=40000, server_port=5000):
    if not time_wait:
        lab.sysctl("net.ipv4.tcp_max_tw_buckets", 0)  # no room for TIME_WAIT sockets
    lab.start_capture()
    listener = lab.listener(server_port)
    client = lab.connect(server_port, src_port=client_port)
    server, _ = listener.accept()
    lab.track(server)

    lab.drop(Match(src_port=client_port, dst_port=server_port, flags="ACK"), count=2)
    client.close()
    server.settimeout(5)
    assert server.recv(100) == b""  # the client's FIN
    server.shutdown(socket.SHUT_WR)  # the server's FIN; its ACK will be dropped
    lab.wait_for(
        lambda: lab.state_of(server_port, client_port) == "CLOSED",
        "the server's connection to end",
        timeout=10,
    )
    err = server.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    settle(lab)  # let the capture take in the last segments

    trace = lab.trace(client_port, server_port).to_dicts()
    fins = [i for i, s in enumerate(trace) if s["src"] == "server" and "FIN" in s["flags"]]
    replies = [s for s in trace[fins[-1] + 1 :] if s["src"] == "client"]
    return {
        "answer": replies[0]["flags"] if replies else None,
        "fin_retransmissions": len(fins) - 1,
        "peer_error": errno.errorcode.get(err, str(err)) if err else None,
        "trace": trace,
    }
    # END SOLUTION
