import json,glob,statistics as st
alone=st.median(json.load(open(f))['vms'][0]['ops_per_sec'] for f in glob.glob('alone*.res.json'))
print('co-runner alone ops/s', round(alone))
for p in ['coboost','express','extend','adaptive']:
  for b in ['4ms','1ms']:
    L=[];F=[];T=[];B=[];C=[]
    for r in range(1,6):
      pre=f'{p}-{b}-r{r}'
      try: R=json.load(open(pre+'.res.json'));M=json.load(open(pre+'.met.json'))
      except Exception: continue
      v=R['vms'];L.append(sum(x['ops_per_sec'] for x in v[:3])/1000);F.append(v[3]['ops_per_sec']/(alone/3))
      s=M['scheduler'];T.append(s['ticks']);B.append(s['backed_off_ticks'])
    print(p,b,'n',len(L),'lock kops %.0f'%st.median(L),'[%.0f-%.0f]'%(min(L),max(L)),'co %.3f [%.3f-%.3f]'%(st.median(F),min(F),max(F)),'ticks',int(st.median(T)),'backed',int(st.median(B)))
