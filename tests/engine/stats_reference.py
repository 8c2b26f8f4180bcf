#!/usr/bin/python3
"""Reference values for tests/engine/lua_stdlib_test.cc ("lua_stdlib: stats ...").

Computed independently of sluice with Debian's numpy and scipy
(apt-get install python3-numpy python3-scipy; numpy 1.24.2, scipy 1.10.1 on
Debian 12). The tests never run this script: its output was pasted into the
test as constants. Rerun it to check them:

    /usr/bin/python3 tests/engine/stats_reference.py

The samples are the same ones the test builds in Lua: small literal arrays,
and pseudo-normal samples from the Park-Miller generator (exact integer
arithmetic, so Lua and Python get bit-identical data).
"""
import numpy as np
from scipy import stats


def uniforms(seed, n):
    s, out = seed, []
    for _ in range(n):
        s = s * 16807 % 2147483647
        out.append(s / 2147483647)
    return out


def normals(seed, n, shift=0.0):
    u = uniforms(seed, 4 * n)
    # Same order of operations as the Lua side: ((u0 + u1) + u2) + u3 - 2 + shift
    return [(((u[4 * i] + u[4 * i + 1]) + u[4 * i + 2]) + u[4 * i + 3]) - 2 + shift for i in range(n)]


A = [2.1, 3.4, 1.9, 5.6, 4.2, 3.3, 2.8, 4.9, 3.1, 2.2]
B = [3.0, 4.4, 2.9, 6.6, 5.1, 4.0, 3.9, 5.5, 4.8, 3.6]
C = [1.0, 2.5, 2.5, 3.3, 7.0, 0.5, 2.2]


def psi(expected, actual, bins=10, eps=1e-4):
    """PSI with bin edges at expected's quantiles q = i/bins, outer bins open."""
    expected = np.asarray(expected)
    actual = np.asarray(actual)
    edges = np.unique(np.quantile(expected, [i / bins for i in range(bins + 1)]))
    interior = edges[1:-1]
    e = np.bincount(np.digitize(expected, interior), minlength=len(interior) + 1) / len(expected)
    a = np.bincount(np.digitize(actual, interior), minlength=len(interior) + 1) / len(actual)
    e = np.where(e == 0, eps, e)
    a = np.where(a == 0, eps, a)
    return float(np.sum((a - e) * np.log(a / e)))


def show(name, value):
    print(f"{name} = {value!r}")


show("mean(A)", float(np.mean(A)))
show("variance(A)", float(np.var(A, ddof=1)))
show("stddev(A)", float(np.std(A, ddof=1)))
show("quantile(A, [0, .1, .25, .5, .9, 1])", [float(q) for q in np.quantile(A, [0, 0.1, 0.25, 0.5, 0.9, 1])])
show("quantile(A, 0.33)", float(np.quantile(A, 0.33)))
c, e = np.histogram(A, 4)
show("histogram(A, 4)", ([int(x) for x in c], [float(x) for x in e]))
c, e = np.histogram(A, [1, 2, 3, 4, 6])
show("histogram(A, {1,2,3,4,6})", ([int(x) for x in c], [float(x) for x in e]))
c, e = np.histogram([5.0, 5.0, 5.0], 2)
show("histogram({5,5,5}, 2)", ([int(x) for x in c], [float(x) for x in e]))

N1 = normals(1, 1000)
N2 = normals(2, 800, 0.3)
show("psi(N1, N2)", psi(N1, N2))
show("psi(N1, N1)", psi(N1, N1))
show("psi(N1, N2, 5)", psi(N1, N2, 5))
show("psi(N1, {0.0}*50, 10)", psi(N1, [0.0] * 50))  # 9 empty bins in actual

for name, (a, b) in {
    "A,B": (A, B),
    "A,C": (A, C),
    "A,A": (A, A),
    "N(3,300),N(4,250,+0.2)": (normals(3, 300), normals(4, 250, 0.2)),
    "N(5,400),N(6,400,+0.1)": (normals(5, 400), normals(6, 400, 0.1)),
    "N(7,12000),N(8,11000,+0.02)": (normals(7, 12000), normals(8, 11000, 0.02)),
    "N(9,12000),N(10,11000,+0.1)": (normals(9, 12000), normals(10, 11000, 0.1)),
    "N(11,20000),N(12,100,+0.1)": (normals(11, 20000), normals(12, 100, 0.1)),
    "N(13,12000),N(14,11000)": (normals(13, 12000), normals(14, 11000)),
    "N(15,12000),N(16,11000,+0.01)": (normals(15, 12000), normals(16, 11000, 0.01)),
}.items():
    r = stats.ks_2samp(a, b)  # alternative='two-sided', method='auto'
    show(f"ks_2samp({name})", (float(r.statistic), float(r.pvalue)))

r = stats.chisquare([16, 18, 16, 14, 12, 12])
show("chisquare([16,18,16,14,12,12])", (float(r.statistic), float(r.pvalue)))
r = stats.chisquare([16, 18, 16, 14, 12, 12], [16, 16, 16, 16, 16, 8])
show("chisquare(.., [16,16,16,16,16,8])", (float(r.statistic), float(r.pvalue)))
r = stats.chisquare([120, 80, 95, 105, 300], [100, 100, 100, 100, 300])
show("chisquare([120,80,95,105,300], [100,100,100,100,300])", (float(r.statistic), float(r.pvalue)))
for table, corr in (([[10, 20], [30, 25]], True), ([[10, 20], [30, 25]], False), ([[12, 5, 8], [7, 14, 9]], True)):
    chi2, p, dof, expected = stats.chi2_contingency(table, correction=corr)
    show(f"chi2_contingency({table}, correction={corr})", (float(chi2), float(p), int(dof), expected.tolist()))
