"""What the tests share; no test module imports another, and none imports bench/.

worlds       a test world (A-to-Z root, state folder, database) and ``make_world``
mariadb      the MariaDB server: a database per test, stopping and starting it (outages)
leaks        the secrets registry and the session-end check that nothing leaked
waiting      ``wait_for``: poll a condition until a deadline
clinics      categories and a patient in a world (``make_clinic``, ``misc_and_xrays``)
images       one png, one jpeg and one DICOM factory, and the renderer tests' test pictures
mounts       Open Dental mounts and their items in a world
placeholders a SetByUrl placeholder row, made as the API makes it
daemons      the daemon on a thread of the test's own process (``running``)
processes    atoz-watcher as a real process: a command, the API, the daemon's lives
api          the Documents API on loopback (``serving``) and its keys
sites        HTTP servers on loopback for downloads, and a resolver from a table
sftp_site    an SFTP server on loopback and the API configured to reach it
samba, smbd  a real Samba server (smbd: no pytest, bench/shares.py uses it too), a relay
harness      the large tree and the daemon process the benches and the large-tree test share
memory_probe large images rendered in a fresh process whose peak memory is read
"""
