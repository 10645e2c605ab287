#!/bin/sh
# The todo database: one request per connection, as `nc -ll -e` hands it over.
#   LIST          answers every item, one per line
#   ADD <item>    stores the item (one line, at most 200 characters), then answers LIST
# Items live in /data/todo.txt: a named volume keeps them when the container is replaced.
data=/data/todo.txt
mkdir -p /data && touch "$data"
read -r verb rest || exit 0
case "$verb" in
    ADD)
        item=$(printf '%s' "$rest" | tr -d '\r\n' | head -c 200)
        [ -n "$item" ] && printf '%s\n' "$item" >> "$data"
        cat "$data" ;;
    LIST) cat "$data" ;;
    *) echo "ERROR unknown request $verb" ;;
esac
