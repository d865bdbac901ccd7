#!/bin/sh
# A local seqmodel job, written by seqmodel.job.local_backend: its replicates one after another, each in
# its own version directory (values quoted with shlex.quote).
for replicate in {scripts}; do
  sh "$replicate"
done
