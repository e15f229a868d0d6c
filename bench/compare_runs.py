#!/usr/bin/env python3
# Compares mproc-bench outputs of two builds run alternately in one session (a refactor's
# before/after: issue 15). Each row's first figure (a median time or a rate) is read from every
# "label  figure unit" line; the table shows after/before per pair, >1 meaning after is slower.
#   mproc-bench-before --quick > b1; mproc-bench --quick > a1; ... (alternate, at least twice)
#   python3 bench/compare_runs.py b1 a1 b2 a2 ...
import re, sys
UNIT = {'ns':1e-9,'us':1e-6,'ms':1e-3,'s':1.0}
RATE = {'tasks/s':1,'k':1,'M':1,'ops/s':1,'calls/s':1,'msg/s':1,'GB/s':1}
def parse(path):
    out = {}; sec = ''
    for line in open(path):
        line=line.rstrip('\n')
        if line and not line.startswith(' '): sec=line[:40]; continue
        m = re.match(r'\s+(\S.*?)\s{2,}([\d.]+)\s?(ns|us|ms|s|[kM]? ?tasks/s|k ops/s|M msg/s|GB/s|k calls/s)\b', line)
        if not m: continue
        label=(sec+' | '+m.group(1))[:80]; v=float(m.group(2)); u=m.group(3)
        if u in UNIT: v*=UNIT[u]; kind='time'
        else:
            if u.startswith('M'): v*=1e6
            elif u.startswith('k'): v*=1e3
            kind='rate'
        out.setdefault(label,(v,kind))
    return out
if __name__=='__main__':
    pairs=[(parse(sys.argv[i]),parse(sys.argv[i+1])) for i in range(1,len(sys.argv),2)]
    keys=[k for k in pairs[0][0] if all(k in b and k in a for b,a in pairs)]
    print(f"{'workload':80} " + '  '.join(f'run{i+1} after/before' for i in range(len(pairs))) + '   (>1: after slower)')
    for k in keys:
        rs=[]
        for b,a in pairs:
            vb,kind=b[k]; va,_=a[k]
            r = va/vb if kind=='time' else vb/va  # >1 means after is slower
            rs.append(r)
        flag = '  <-- slower in every run' if all(r>1.10 for r in rs) else ''
        print(f"{k:80} " + '  '.join(f'{r:17.2f}' for r in rs) + flag)
