# Makes BENCHMARKS.md's tables from a matrix's runs.csv: python3 tables.py DIR [x]  (x: without runs the host
# stole >5% of). The policies are those of the list below that DIR ran.
import csv, statistics as st, collections, sys
d = sys.argv[1]; exclude = len(sys.argv) > 2
rows = list(csv.DictReader(open(d + '/runs.csv')))
pols = ['cfs', 'coboost', 'extend', 'extend-dl', 'express', 'express-dl', 'gang', 'adaptive', 'adaptive-dl']
singles = ['cfs', 'coboost', 'extend', 'extend-dl', 'express', 'express-dl', 'gang']
ran = {r['policy'] + ('-dl' if r['boost_class'].startswith('deadline') else '') for r in rows}
pols = [p for p in pols if p in ran]; singles = [p for p in singles if p in ran]
def pol(r): return r['policy'] + ('-dl' if r['boost_class'].startswith('deadline') else '')
def stolen(r): return r['host_steal_pct'] and float(r['host_steal_pct']) > 5
order = []
E, F, C, O, B = (collections.defaultdict(list) for _ in range(5))
nstolen = 0
for r in rows:
    if r['kind'] not in ('cell', 'fairness', 'alone', 'cpu-alone') or r['status'] != 'ok': continue
    if stolen(r): nstolen += 1
    if r['kind'] not in ('cell', 'fairness'): continue
    if exclude and stolen(r): continue
    k = (r['scenario'], r['lock'])
    if k not in order: order.append(k)
    if r['kind'] == 'cell':
        E[k + (pol(r),)].append(float(r['efficiency'])); C[k + (pol(r),)].append(float(r['scheduler_cpu_ms']))
        O[k + (pol(r),)].append(st.mean(float(x) for x in r['vm_ops_per_s'].split(';')))
        B[k + (pol(r),)].append(int(r['boosts'] or 0))
    elif r['fairness']: F[k + (pol(r),)].append(float(r['fairness']))
med = lambda v: st.median(v) if v else float('nan')
print('runs:', len(rows), 'ok:', sum(r['status'] == 'ok' for r in rows), 'stolen >5%:', nstolen,
      'median steal %:', med([float(r['host_steal_pct']) for r in rows if r['host_steal_pct']]))
print('| scenario | lock | ' + ' | '.join(pols) + ' | adaptive / best single | adaptive / gang |')
print('|---|---|' + '---:|' * (len(pols) + 2))
for sc, lk in order:
    vals = [med(E[(sc, lk, p)]) for p in pols]; best = max(vals)
    cells = [('**%.3f**' % v if best - v <= 0.005 else '%.3f' % v) for v in vals]
    bs = max(singles, key=lambda p: med(E[(sc, lk, p)]))
    a = med(E[(sc, lk, 'adaptive')])
    print(f'| {sc} | {lk} | ' + ' | '.join(cells) + f' | {a / med(E[(sc, lk, bs)]):.3f} ({bs}) | {a / med(E[(sc, lk, "gang")]):.3f} |')
if exclude: sys.exit()
for title, table, fmt in (('Co-runner share', F, '%.2f'), ('Scheduler CPU, ms per 3 s run', C, '%.1f'), ('Boosts per run', B, '%.0f')):
    print(); print(title)
    print('| scenario | lock | ' + ' | '.join(pols) + ' |'); print('|---|---|' + '---:|' * len(pols))
    for sc, lk in order: print(f'| {sc} | {lk} | ' + ' | '.join(fmt % med(table[(sc, lk, p)]) for p in pols) + ' |')
print()
print('ops/s per VM: adaptive homogeneous pvticket', med(O[('homogeneous', 'pvticket', 'adaptive')]),
      sorted(O[('homogeneous', 'pvticket', 'adaptive')]), '; cfs pvhalt', med(O[('pvhalt', 'pvhalt', 'cfs')]), sorted(O[('pvhalt', 'pvhalt', 'cfs')]))
