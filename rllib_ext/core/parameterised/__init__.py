"""Shared pieces of the parameterised-action algorithms (P-DQN family, PA-DDPG).

- :mod:`.action_layout`: which ``Tuple(Discrete(K), Box…)`` forms are accepted, parameter layout;
- :mod:`.parameterised_replay`: the flat-array transition replay;
- :mod:`.parameterised`: ``ParameterisedActionConfig`` (knobs every such algorithm shares and
  their validation) and ``ParameterisedActionAlgorithm`` (the sample → replay → update →
  sync training step);
- :mod:`.parameterised_learner`: batch keys and the ε schedule the learners share;
- :mod:`.torch.networks`: MLP builder, the frozen-passthrough parameter head and the
  exploration noise.
"""
