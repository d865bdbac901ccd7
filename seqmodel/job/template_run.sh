#!/bin/sh
# One replicate of a local seqmodel job, written by seqmodel.job.local_backend with str.format. Every
# value below was quoted with shlex.quote first, so no hparam value can run as shell code.
cd {workdir} || exit 1
SEQMODEL_TERMINATION_LOG={summary}
export SEQMODEL_TERMINATION_LOG
{python} -m seqmodel.run {args} >{log} 2>&1
status=$?
echo "$status" >{exit_file}.tmp
mv {exit_file}.tmp {exit_file}
exit "$status"
