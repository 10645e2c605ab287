FROM busybox AS build
FROM busybox
