# The bench's ideal sender (issue 13): answers a POP3 client for one message whose wire form (CRLF
# line ends, dot-stuffed, ending in ".\r\n") was prepared beforehand in a file, and sends it with
# sendfile(2). No POP3 logic beyond the few replies the bench client needs.
# Usage: python3 ideal-sender.py WIRE_FILE OCTETS  (prints "port N" once listening on 127.0.0.1)
import os, socket, sys, threading

wire, octets = sys.argv[1], int(sys.argv[2])
replies = {
    b'USER': b'+OK\r\n', b'PASS': b'+OK\r\n', b'QUIT': b'+OK\r\n',
    b'STAT': b'+OK 1 %d\r\n' % octets,
    b'LIST': b'+OK\r\n1 %d\r\n.\r\n' % octets,
    b'UIDL': b'+OK\r\n1 ideal\r\n.\r\n',
}

def serve(conn):
    with conn, conn.makefile('rb') as lines, open(wire, 'rb') as body:
        conn.sendall(b'+OK ideal sender\r\n')
        for line in lines:
            verb = line[:4].upper()
            if verb == b'RETR':
                conn.sendall(b'+OK %d octets\r\n' % octets)
                conn.sendfile(body, 0)
            else:
                conn.sendall(replies.get(verb, b'-ERR\r\n'))
            if verb == b'QUIT':
                return

# Ends with the bench: its stdin is a pipe from the bench, closed when the bench exits.
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
listener = socket.create_server(('127.0.0.1', 0))
print(f'port {listener.getsockname()[1]}', flush=True)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
