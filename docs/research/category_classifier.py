"""A stronger category classifier (word 1-2 + char_wb 2-5 TF-IDF, LinearSVC C=1, softmax(decision / 0.3)) as the
routing context on mmlu_pro-29: out-of-fold (5 folds) on train, fitted on train for test; supervised ridge on it;
test V_B against the current `category` head, seeds 0-4. Run from the repository: .venv/bin/python
docs/research/category_classifier.py svc (about 12 minutes). Kept as it was run (2026-12-06)."""

import sys, time
import numpy as np
sys.path.insert(0, "benchmarks")
from targets import MMLU, models_29
from banditroute.simulations.evaluate import EvalConfig, _setup, _reference
from banditroute.simulations.methods import supervised_ridge
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.svm import LinearSVC
from sklearn.model_selection import StratifiedKFold
from scipy.sparse import hstack

def vec_fit(prompts):
    w = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2, max_features=200000)
    c = TfidfVectorizer(sublinear_tf=True, analyzer="char_wb", ngram_range=(2, 5), min_df=3, max_features=300000)
    A = hstack([w.fit_transform(prompts), c.fit_transform(prompts)]).tocsr()
    return (w, c), A

def vec_tr(v, prompts):
    return hstack([v[0].transform(prompts), v[1].transform(prompts)]).tocsr()

def softmax(z, T):
    z = z / T; z = z - z.max(1, keepdims=True); e = np.exp(z); return e / e.sum(1, keepdims=True)

def probs(tr_p, tr_y, te_p, kind):
    v, A = vec_fit(tr_p); B = vec_tr(v, te_p)
    if kind == "svc":
        m = LinearSVC(C=1.0).fit(A, tr_y); return softmax(m.decision_function(B), 0.3), m.classes_
    m = SGDClassifier(loss="log_loss", alpha=1e-5, max_iter=1000, tol=1e-4, random_state=0).fit(A, tr_y)
    return m.predict_proba(B), m.classes_

kind = sys.argv[1] if len(sys.argv) > 1 else "svc"
out = []
for s in range(5):
    t = time.time()
    st = _setup(EvalConfig(records=str(MMLU), out="-", seed=s, models=models_29(), progress=False), "category")
    tr, te = st.prep.train, st.prep.test
    trp, tep = list(tr.prompts), list(te.prompts)
    ytr = np.asarray(tr.labels if hasattr(tr, "labels") else tr.benchmarks).astype(str)
    yte = np.asarray(te.labels if hasattr(te, "labels") else te.benchmarks).astype(str)
    Pte, classes = probs(trp, ytr, tep, kind)
    acc = (classes[Pte.argmax(1)] == yte).mean()
    Ptr = np.zeros((len(trp), len(classes)))
    for a, b in StratifiedKFold(5, shuffle=True, random_state=s).split(trp, ytr):
        P, cl = probs([trp[i] for i in a], ytr[a], [trp[i] for i in b], kind)
        Ptr[b] = P
    bs = _reference(st)["best_single_quality"]
    def vb(Xtr, Xte):
        r = supervised_ridge(Xtr, st.train.Q, st.train.C, 1.0)
        return float((r.pmf(Xte, 0.0) * st.test.Q).sum(1).mean()) / bs
    one = lambda P: np.hstack([P, np.ones((len(P), 1))])
    cur = vb(st.train.X, st.test.X)
    new = vb(one(Ptr), one(Pte))
    both = vb(np.hstack([st.train.X[:, :-1], one(Ptr)]), np.hstack([st.test.X[:, :-1], one(Pte)]))
    cur_acc = (st.test.X[:, :-1].argmax(1) == np.searchsorted(np.unique(ytr), yte)).mean()
    out.append((cur, new, both, acc, cur_acc))
    print(s, "V_B current %.4f new %.4f both %.4f | acc new %.4f current %.4f | %.0fs" % (cur, new, both, acc, cur_acc, time.time() - t), flush=True)
a = np.array(out); print("mean", np.round(a.mean(0), 4))
