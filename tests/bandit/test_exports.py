import banditroute.bandit as bandit


def test_public_api_is_what_we_meant() -> None:
    assert set(bandit.__all__) == {
        "POLICIES",
        "UCB1",
        "Artifact",
        "ArtifactError",
        "BanditError",
        "BestSingle",
        "BudgetPacer",
        "Decision",
        "InvalidHyperparameterError",
        "InvalidInputError",
        "LinEpsGreedy",
        "LinTS",
        "LinUCB",
        "MissingExtraError",
        "OnnxStaticPolicy",
        "Oracle",
        "Policy",
        "RandomPolicy",
        "StateError",
        "Thompson",
        "UnknownModelError",
        "export",
        "import_artifact",
        "make_policy",
        "policy_from_state",
        "to_bytes",
    }
    for name in bandit.__all__:
        assert hasattr(bandit, name)
