import csv,statistics as st,collections,sys
d=sys.argv[1]; exclude=len(sys.argv)>2
rows=list(csv.DictReader(open(d+'/runs.csv')))
pols=['cfs','coboost','extend','express','gang','adaptive','adaptive-dl']
singles=['cfs','coboost','extend','express','gang']
def pol(r): return r['policy']+('-dl' if r['boost_class'].startswith('deadline') else '')
def stolen(r): return r['host_steal_pct'] and float(r['host_steal_pct'])>5
order=[]
E=collections.defaultdict(list);F=collections.defaultdict(list);C=collections.defaultdict(list);O=collections.defaultdict(list)
for r in rows:
    if r['kind'] not in ('cell','fairness') or r['status']!='ok': continue
    if exclude and stolen(r): continue
    k=(r['scenario'],r['lock'])
    if k not in order: order.append(k)
    if r['kind']=='cell':
        E[k+(pol(r),)].append(float(r['efficiency'])); C[k+(pol(r),)].append(float(r['scheduler_cpu_ms']))
        O[k+(pol(r),)].append(st.mean(float(x) for x in r['vm_ops_per_s'].split(';')))
    elif r['fairness']: F[k+(pol(r),)].append(float(r['fairness']))
med=lambda v: st.median(v) if v else float('nan')
print('| scenario | lock | '+' | '.join(pols)+' | adaptive / best single |')
print('|---|---|'+'---:|'*(len(pols)+1))
for sc,lk in order:
    vals=[med(E[(sc,lk,p)]) for p in pols]; best=max(vals)
    cells=[('**%.3f**'%v if best-v<=0.005 else '%.3f'%v) for v in vals]
    bs=max(singles,key=lambda p:med(E[(sc,lk,p)]))
    print(f'| {sc} | {lk} | '+' | '.join(cells)+f' | {med(E[(sc,lk,"adaptive")])/med(E[(sc,lk,bs)]):.3f} ({bs}) |')
if exclude: sys.exit()
print()
print('| scenario | lock | '+' | '.join(pols)+' |'); print('|---|---|'+'---:|'*len(pols))
for sc,lk in order: print(f'| {sc} | {lk} | '+' | '.join('%.2f'%med(F[(sc,lk,p)]) for p in pols)+' |')
print()
print('| scenario | lock | '+' | '.join(pols)+' |'); print('|---|---|'+'---:|'*len(pols))
for sc,lk in order: print(f'| {sc} | {lk} | '+' | '.join('%.1f'%med(C[(sc,lk,p)]) for p in pols)+' |')
print()
print('ops adaptive homog pvticket', med(O[('homogeneous','pvticket','adaptive')]), 'cfs pvhalt', med(O[('pvhalt','pvhalt','cfs')]), O[('pvhalt','pvhalt','cfs')])
