import pickle

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skconvex import ConvexAttentionHead, ConvexAttentionHeadRegressor
from skconvex.programs.attention import attention_operator, tokens_from_features
from skconvex.programs.datafits import Logistic, Multinomial, SquaredError
from test_attention_operators import HEAD_TYPES, reference_output


@pytest.fixture
def token_data():
    """60 samples of 4 tokens of dimension 2, with a target that mixes tokens."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 8))
    T = X.reshape(60, 4, 2)
    y = (
        np.einsum("ni,ni->n", T[:, 0], T[:, 2])
        - T[:, 3, 1]
        + 0.1 * rng.standard_normal(60)
    )
    return X, y


def _classes(y, n_classes):
    return np.searchsorted(np.quantile(y, np.linspace(0, 1, n_classes + 1)[1:-1]), y)


def _tokens(est, X):
    return tokens_from_features(X, est.n_tokens, bias=est.fit_intercept)


def nonconvex_objective(est, X, y):
    """Weight-decay objective of the recovered heads, from a loop implementation."""
    heads = [(W1, W2, g) for (W1, W2), g in zip(est.heads_, est.head_blocks_)]
    C = len(np.atleast_1d(est.intercept_))
    out = np.atleast_1d(est.intercept_) + (
        reference_output(
            _tokens(est, X), est.head, est.activation, heads, est.gates_, est.pooling
        )
        if heads
        else np.zeros((len(X), C))
    )
    n = len(y)
    s = np.full(n, 1.0 / n)
    if isinstance(est, ConvexAttentionHeadRegressor):
        loss, alpha = SquaredError().value(
            out, y.reshape(n, -1), s
        ), est.alpha * np.std(y)
    else:
        codes = np.searchsorted(est.classes_, y)
        if len(est.classes_) == 2:
            loss = Logistic().value(out, np.where(codes == 1, 1.0, -1.0)[:, None], s)
        else:
            loss = Multinomial().value(out, np.eye(len(est.classes_))[codes], s)
        alpha = est.alpha
    decay = sum(0.5 * (np.sum(np.abs(W1) ** 2) + np.sum(W2**2)) for W1, W2, _ in heads)
    return loss + alpha * decay


@pytest.mark.parametrize("case", HEAD_TYPES, ids="-".join)
@pytest.mark.parametrize("target", ["regression", "binary", "multiclass"])
def test_objective_equals_weight_decay_objective_of_recovered_heads(
    token_data, case, target
):
    head, activation = case
    X, y = token_data
    params = dict(
        n_tokens=4,
        head=head,
        activation=activation,
        alpha=0.02,
        n_gates=3,
        tol=1e-9,
        max_iter=50000,
        random_state=0,
    )
    if target == "regression":
        est = ConvexAttentionHeadRegressor(**params)
    else:
        est = ConvexAttentionHead(**params)
        y = _classes(y, 2 if target == "binary" else 3)
    est.fit(X, y)
    assert est.dual_gap_ <= 1e-9 * est.objective_ * (1 + 1e-9)
    np.testing.assert_allclose(
        nonconvex_objective(est, X, y), est.objective_, rtol=1e-6
    )
    # number of heads = rank of the blocks
    sv = np.linalg.svd(est.Z_, compute_uv=False)
    if not (head == "fno" and activation == "linear"):
        assert est.n_heads_ == np.sum(sv > 1e-10 * sv.max())
    assert est.n_heads_ == len(est.heads_) > 0


@pytest.mark.parametrize("case", HEAD_TYPES, ids="-".join)
def test_predictions_of_heads_equal_convex_model_out_of_sample(token_data, case):
    head, activation = case
    X, y = token_data
    est = ConvexAttentionHead(
        n_tokens=4,
        head=head,
        activation=activation,
        n_gates=3,
        pooling="first",
        random_state=0,
    )
    est.fit(X, _classes(y, 3))
    X_new = np.random.default_rng(5).standard_normal((25, 8))
    op = attention_operator(
        _tokens(est, X_new),
        head,
        activation,
        pooling="first",
        gates=est.gates_,
        n_outputs=3,
    )
    convex = op.forward(op.coef_from_blocks(est.Z_)) + est.intercept_
    np.testing.assert_allclose(
        est.decision_function(X_new), convex, rtol=1e-9, atol=1e-9
    )
    # the token contributions add up to the output, and clusters name the largest
    contributions = est.token_contributions(X_new)
    assert contributions.shape == (25, est.n_heads_, 4, 3)
    np.testing.assert_allclose(
        contributions.sum(axis=(1, 2)) + est.intercept_, convex, rtol=1e-9, atol=1e-9
    )
    labels = est.token_clusters(X_new)
    norms = np.linalg.norm(contributions, axis=3)
    np.testing.assert_array_equal(
        labels, np.where(norms.max(axis=1) > 0, norms.argmax(axis=1), -1)
    )
    assert est.token_clusters_.shape == (60, 4)


def test_attention_learns_a_token_interaction_a_linear_head_cannot():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 6))  # 2 tokens of dimension 3
    y = np.einsum("ni,ni->n", X[:, :3], X[:, 3:])
    X_test = rng.standard_normal((200, 6))
    y_test = np.einsum("ni,ni->n", X_test[:, :3], X_test[:, 3:])
    head = ConvexAttentionHeadRegressor(n_tokens=2, alpha=1e-3, random_state=0).fit(
        X, y
    )
    assert head.score(X_test, y_test) > 0.95
    assert LinearRegression().fit(X, y).score(X_test, y_test) < 0.1
    assert 1 <= head.n_heads_ <= 6


@pytest.mark.parametrize("Est", [ConvexAttentionHead, ConvexAttentionHeadRegressor])
def test_bad_n_tokens_rejected(token_data, Est):
    X, y = token_data
    with pytest.raises(
        ValueError, match=r"n_tokens=3 does not divide the number of features 8"
    ):
        Est(n_tokens=3).fit(X, y > 0)
    with pytest.raises(ValueError, match="n_tokens"):
        Est(n_tokens=0).fit(X, y > 0)
    with pytest.raises(ValueError, match="head"):
        Est(n_tokens=4, head="conv").fit(X, y > 0)


def test_float32_compute_with_float64_certificate(token_data):
    X, y = token_data
    params = dict(
        n_tokens=4,
        activation="gated_relu",
        n_gates=2,
        alpha=0.02,
        tol=1e-6,
        random_state=0,
    )
    est32 = ConvexAttentionHeadRegressor(**params).fit(X.astype(np.float32), y)
    est64 = ConvexAttentionHeadRegressor(**params).fit(X, y)
    assert est32.gates_.dtype == np.float32
    assert est32.dual_gap_ <= 1e-6 * est32.objective_
    np.testing.assert_allclose(est32.objective_, est64.objective_, rtol=2e-6)


def test_warm_start_reuses_gates_and_solution(token_data):
    X, y = token_data
    est = ConvexAttentionHeadRegressor(
        n_tokens=4,
        activation="gated_relu",
        n_gates=3,
        alpha=0.02,
        tol=1e-7,
        max_iter=20000,
        warm_start=True,
        random_state=0,
    )
    first = est.fit(X, y).n_iter_
    gates = est.gates_.copy()
    assert est.fit(X, y).n_iter_ < first / 2
    np.testing.assert_array_equal(est.gates_, gates)
    est.set_params(alpha=4e-2).fit(X, y)
    assert est.dual_gap_ <= 1e-7 * est.objective_


def test_sample_weights_equal_repetitions(token_data):
    # The weighted and the repeated programs have the same optimum; both fits
    # certify their objective, so the objectives agree within the two gaps.
    X, y = token_data
    w = np.random.default_rng(2).integers(0, 3, len(y))
    params = dict(
        n_tokens=4,
        head="mlp_mixer",
        activation="gated_relu",
        n_gates=3,
        tol=1e-8,
        random_state=0,
    )
    a = ConvexAttentionHeadRegressor(**params).fit(X, y, sample_weight=w)
    b = ConvexAttentionHeadRegressor(**params).fit(
        np.repeat(X, w, axis=0), np.repeat(y, w)
    )
    # the regressors scale alpha by the (weighted) std of y: the same in both
    assert abs(a.objective_ - b.objective_) <= a.dual_gap_ + b.dual_gap_ + 1e-12
    np.testing.assert_allclose(a.predict(X), b.predict(X), atol=1e-3)


def test_large_alpha_gives_no_heads(token_data):
    X, y = token_data
    est = ConvexAttentionHeadRegressor(n_tokens=4, alpha=1e3).fit(X, y)
    assert est.n_heads_ == 0 and est.heads_ == []
    np.testing.assert_allclose(est.predict(X), y.mean())
    assert (est.token_clusters(X) == -1).all()


def test_convergence_warning_and_verbose(token_data, capsys):
    X, y = token_data
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        est = ConvexAttentionHead(n_tokens=4, max_iter=1, verbose=1).fit(X, y > 0)
    assert est.n_iter_ >= 1 and est.dual_gap_ > 0
    assert "rel. gap" in capsys.readouterr().out


def test_regressor_equivariant_to_target_scale(token_data):
    X, y = token_data
    a = ConvexAttentionHeadRegressor(
        n_tokens=4, head="fno", tol=1e-9, max_iter=20000
    ).fit(X, y)
    b = ConvexAttentionHeadRegressor(
        n_tokens=4, head="fno", tol=1e-9, max_iter=20000
    ).fit(X, 100 * y - 3)
    np.testing.assert_allclose(
        100 * a.predict(X) - 3, b.predict(X), rtol=1e-4, atol=1e-3
    )


def test_pipeline_grid_search_and_pickle(token_data):
    X, y = token_data
    labels = np.array(["a", "b", "c"])[_classes(y, 3)]
    pipe = make_pipeline(
        StandardScaler(),
        ConvexAttentionHead(n_tokens=4, head="mlp_mixer", random_state=0),
    )
    search = GridSearchCV(pipe, {"convexattentionhead__alpha": [1e-3, 1e-2]}, cv=3).fit(
        X, labels
    )
    assert set(search.predict(X)) <= set(labels)
    clone = pickle.loads(pickle.dumps(search.best_estimator_))
    np.testing.assert_array_equal(
        clone.predict_proba(X), search.best_estimator_.predict_proba(X)
    )
