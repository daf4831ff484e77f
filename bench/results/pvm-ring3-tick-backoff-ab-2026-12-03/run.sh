#!/bin/bash
# usage: run.sh POLICY BACKOFF OUTPREFIX
S=${SPINDLE:-build/vmm/spindle}
$S run --serial off --log-level warn --pcpus 0-1 --policy $1 --tick-backoff $2 --results $3.res.json --metrics $3.met.json \
  --vm lockbench,cpus=2,args="mode=lock lock=pvticket cs=500ns think=2us duration=3s" \
  --vm lockbench,cpus=1,args="mode=lock lock=pvticket cs=500ns think=2us duration=3s" \
  --vm lockbench,cpus=1,args="mode=lock lock=pvticket cs=500ns think=2us duration=3s" \
  --vm lockbench,cpus=2,args="mode=cpu duration=3s" >/dev/null
