"""The node's images: a content-addressed OCI image store (store.py), import from OCI
layouts, OCI archives and root filesystems (importer.py), layers unpacked for overlayfs
(unpack.py), and a busybox base image built locally (busybox.py).

Import the submodules directly (`from agent.images.store import ImageStore`); this package
file stays empty of imports so that importing one part does not load them all."""
