# The app's database: a tiny line-oriented store on port 3306 (db/serve.sh), its data in
# /data. Built from the same folder as the web app: `build: {context: ., dockerfile:
# db.Dockerfile}`.
FROM busybox
WORKDIR /db
COPY db/ ./
EXPOSE 3306
CMD ["nc", "-ll", "-p", "3306", "-e", "sh", "/db/serve.sh"]
