#!/usr/bin/env python3
"""Lists functions longer than LIMIT lines (issue 18: none over 150 in engine/ and app/).

Usage: scripts/long-functions.py LIMIT DIR...   e.g. scripts/long-functions.py 150 engine app
A brace-matching scan (comments, strings and preprocessor lines blanked first): a block whose header ends in
`)` (plus const/noexcept/override/-> type or a constructor's initialiser list) and is not a control statement
counts as a function; lambdas and local classes count as part of the function around them. Output: lines,
file:line, name, longest first. Exit status 1 when anything is listed."""
import re, sys, pathlib

limit = int(sys.argv[1])
found = []
def strip(src):
    out=[]; i=0; n=len(src)
    while i<n:
        c=src[i]
        if src.startswith('//',i):
            j=src.find('\n',i); j=n if j<0 else j; out.append(' '*(j-i)); i=j
        elif src.startswith('/*',i):
            j=src.find('*/',i+2); j=n if j<0 else j+2; out.append(re.sub(r'[^\n]',' ',src[i:j])); i=j
        elif src.startswith('R"',i):
            m=re.match(r'R"([^(]*)\(',src[i:]); end=')'+m.group(1)+'"'; j=src.find(end,i)+len(end)
            out.append(re.sub(r'[^\n]',' ',src[i:j])); i=j
        elif c in '"\'':
            j=i+1
            while j<n and src[j]!=c:
                j+= 2 if src[j]=='\\' else 1
            j+=1; out.append(re.sub(r'[^\n]',' ',src[i:j])); i=j
        elif c=='#' and (i==0 or src[i-1]=='\n'):
            j=i
            while True:
                k=src.find('\n',j); k=n if k<0 else k
                if src[k-1]=='\\': j=k+1; continue
                break
            out.append(re.sub(r'[^\n]',' ',src[i:k])); i=k
        else:
            out.append(c); i+=1
    return ''.join(out)
ctrl=re.compile(r'\b(if|for|while|switch|catch|do|else|return|try)\s*(\(.*)?$', re.S)
for path in sys.argv[2:]:
    for f in sorted(pathlib.Path(path).rglob('*')):
        if f.suffix not in ('.cpp','.h','.cu','.cuh','.hpp','.cc'): continue
        s=strip(f.read_text(errors='replace'))
        stack=[]; last=0
        for i,c in enumerate(s):
            if c=='{':
                head=s[last:i].strip()
                hs=' '.join(head.split())
                isfn = bool(re.search(r'\)\s*(const|noexcept|override|final|mutable|->\s*[\w:<>,\s*&]+|\s)*$', hs) or re.search(r'\)\s*:\s*.*$', hs)) \
                       and not ctrl.match(hs.split('\n')[-1]) and not re.match(r'^(if|for|while|switch|catch)\b', hs)
                infn = any(e[0] for e in stack)
                stack.append((isfn and not infn, i, head))
                last=i+1
            elif c=='}':
                if stack:
                    isfn, st, head = stack.pop()
                    if isfn:
                        ln0 = s.count('\n',0, s.rfind(head,0,st) if head else st)+1
                        ln1 = s.count('\n',0,i)+1
                        if ln1-ln0+1>limit:
                            name=re.findall(r'([~\w:]+)\s*\(', ' '.join(head.split()))
                            found.append((ln1-ln0+1, f"{f}:{ln0}", name[0] if name else head[:40]))
                last=i+1
            elif c==';':
                last=i+1

for n, where, name in sorted(found, reverse=True):
    print(f"{n:5d} {where} {name}")
sys.exit(1 if found else 0)
