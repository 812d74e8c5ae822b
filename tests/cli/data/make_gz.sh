#!/bin/sh
# Writes the gzip-compressed test data of tests/cli/data from the plain files beside it (which
# make_data.cpp wrote), for `kiln report` and `kiln compare` on .json.gz input:
#   trace_base.json.gz   trace_base.json compressed: a trace as KILN_PROFILE=FILE.json.gz
#                        writes it (gzip format; kiln writes it through zlib)
#   profile_new.json.gz  profile_new.json compressed: a profile someone gzipped
#   truncated.json.gz    the first 2000 bytes of trace_base.json.gz: a file cut short
# -n leaves the name and time out of the header, so the output depends only on the input.
# Run from anywhere: sh tests/cli/data/make_gz.sh
set -eu
cd "$(dirname "$0")"
gzip -9 -n -c trace_base.json > trace_base.json.gz
gzip -9 -n -c profile_new.json > profile_new.json.gz
head -c 2000 trace_base.json.gz > truncated.json.gz
