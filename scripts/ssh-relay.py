# An ssh ProxyCommand that relays a connection to HOST:PORT and records how many bytes were sent
# to the host in PREFIX.<pid> (replaced whole after each chunk, so a reader never sees it half
# written). The tests (ArtifactsEndToEndTests) and bench/fleet.sh count the controller's traffic
# per host with it:   ProxyCommand python3 scripts/ssh-relay.py %h %p DIR/%n
import os, socket, sys, threading
host, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3] + "." + str(os.getpid())
upstream = socket.create_connection((host, port))
def down():
    while True:
        data = upstream.recv(65536)
        if not data:
            break
        view = memoryview(data)
        while view:
            view = view[os.write(1, view):]
    os._exit(0)
threading.Thread(target=down, daemon=True).start()
sent = 0
while True:
    data = os.read(0, 65536)
    if not data:
        break
    upstream.sendall(data)
    sent += len(data)
    with open(out + ".tmp", "w") as f:
        f.write(str(sent))
    os.replace(out + ".tmp", out)
upstream.shutdown(socket.SHUT_WR)
threading.Event().wait()
