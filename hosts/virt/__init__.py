"""The libvirt access layer: the only package that imports `libvirt`.

`connections` owns connections (one per process per host, keepalive, back-off, a timeout on
every call); the other modules wrap one libvirt object type each and return plain data.
"""
