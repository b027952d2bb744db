#!/bin/sh
# Makes a throwaway CA and a certificate for 127.0.0.1 in $1 (for the TLS
# end-to-end tests: MSAL only talks to an https authority). Node trusts the
# CA through NODE_EXTRA_CA_CERTS, set by the npm test script. The
# *.parley.localhost names are the same-site deployment of signin.test.mjs.
set -eu
d=$1
mkdir -p "$d"
cd "$d"
if [ -f ca.pem ] && [ -f server.pem ] && [ -n "$(find ca.pem -mmin -600)" ] && grep -q parley.localhost server.ext 2>/dev/null; then exit 0; fi
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=Parley e2e test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:parley.localhost,DNS:*.parley.localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext 2>/dev/null
chmod 600 ca.key server.key
