${SPINDLE:-build/vmm/spindle} run --serial off --log-level warn --pcpus 0-1 --results $1.res.json --vm lockbench,cpus=2,args="mode=cpu duration=3s" >/dev/null
