"""``batch_mode="complete_episodes"`` sampling that keeps every episode it finishes.

RLlib 2.60's env runners sample complete episodes as ``sample(num_episodes=num_envs)``: every
call resets all sub-envs, runs until ``num_envs`` episodes have finished and throws away the
episodes still running then; the algorithm calls it again until the train batch is full. The
discarded steps count as sampled env steps (and cost their env steps and forward passes). With
8 CartPole envs and a 2 000-step PG batch, 40 % of the sampled env steps never reached the
learner (``benchmarks/on_policy_plain.py``, RESULTS.md).

:class:`WholeEpisodeSampling` samples the batch in one call instead: the sub-envs are reset
once, at the start of the call, and stepped (as ``num_timesteps`` chunks, which the env runner
continues across chunks) until the finished episodes hold this env runner's share of the train
batch (``total_train_batch_size / num_env_runners`` env steps); chunks of one episode are
joined, and only the episodes still running at that point are dropped. Every returned episode
is complete and was sampled within this call, with the weights the env runner holds during it:
as on-policy as RLlib's own, with one set of unfinished episodes dropped per call instead of one
per ``num_envs`` finished episodes.

Explicit ``num_timesteps`` / ``num_episodes`` calls (evaluation, RLlib's own callers) and
``batch_mode="truncate_episodes"`` are RLlib's behaviour unchanged.
"""

from __future__ import annotations

import copy


class WholeEpisodeSampling:
    """Mixin for an RLlib ``SingleAgentEnvRunner`` / ``MultiAgentEnvRunner`` subclass (module
    docstring)."""

    def sample(self, *, num_timesteps=None, num_episodes=None, explore=None,
               random_actions: bool = False, force_reset: bool = False, **kwargs):
        if (num_timesteps is not None or num_episodes is not None
                or self.config.batch_mode != "complete_episodes"):
            return super().sample(num_timesteps=num_timesteps, num_episodes=num_episodes,
                                  explore=explore, random_actions=random_actions,
                                  force_reset=force_reset, **kwargs)
        # This env runner's share of the train batch (RLlib's complete-episodes mode ignores
        # rollout_fragment_length too).
        target = -(-self.config.total_train_batch_size // max(1, self.config.num_env_runners))
        finished, running, steps = [], {}, 0
        copied = set()  # ids whose running episode is our own copy
        first = True
        while steps < target:
            # The first chunk resets every sub-env: no episode of an earlier call (other
            # weights) is continued. Each chunk asks for what is still missing; episodes
            # running past it continue in the next chunk.
            chunks = super().sample(num_timesteps=max(target - steps, self.num_envs),
                                    explore=explore, random_actions=random_actions,
                                    force_reset=first, **kwargs)
            first = False
            for chunk in chunks:
                episode = running.pop(chunk.id_, None)
                if episode is None:
                    episode = chunk
                else:
                    if chunk.id_ not in copied:
                        # The env runner keeps its chunks to sum the episode's return and
                        # length for its metrics: join into a copy, never into its chunk.
                        episode = copy.deepcopy(episode)
                        copied.add(chunk.id_)
                    episode.concat_episode(chunk)
                if episode.is_done:
                    finished.append(episode)
                    steps += episode.env_steps()
                else:
                    running[chunk.id_] = episode
        return finished
