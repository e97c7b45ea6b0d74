"""Platform race: two players race across the Platform level, a multi-agent parameterised-action
task (RLlib ``MultiAgentEnv``) in which the agents interact through the race.

Rules:

- Each player runs its own lane: a copy of the Platform level (:mod:`rllib_ext.envs.platform`)
  with its own two enemies. Both lanes start from the same seed, so the race starts on the same
  level; enemy noise then follows each lane's own frames.
- Players ``"player_0"`` and ``"player_1"`` act simultaneously: every env step each player still
  racing takes one macro-action (run / hop / leap with its distance) in its lane, in the
  MP-DQN scripts' agent view (``rllib_ext.envs.make(..., scale=True)``: flat
  ``Tuple(Discrete(3), Box(1), Box(1), Box(1))`` with parameters in [-1, 1]).
- A player who falls into a gap or touches an enemy is out (terminated); the other races on.
- The first player to reach the end of the level (x >= 1035) wins and the race is over for
  both: the winner gets :data:`WIN_BONUS` on top of its progress reward, the opponent's race ends
  where it stands (terminated). Players finishing in the same step both win.
- The race also ends when both players are out, or after :data:`MAX_STEPS` steps (truncated,
  as Platform's time limit).

Reward per player and step: its lane's Platform reward (x-progress / 1035), plus the bonus on a
win. A player's return is therefore at most 1 + :data:`WIN_BONUS`; a lone player who reaches
the end scores exactly that, and beating an opponent means getting there in fewer macro-steps.
Observation per player (11, float32 in [-1, 1]): its lane's 9 scaled Platform features, then
the opponent's progress (x / 1035 scaled to [-1, 1]) and whether the opponent is still racing
(+1 / -1). Infos carry ``"winner"`` (True/False) for the players whose race ended.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from ray.rllib.env.multi_agent_env import MultiAgentEnv

PLAYERS = ("player_0", "player_1")
#: Added to the reward of the player who reaches the end of the level first.
WIN_BONUS = 0.5
#: Steps before the race ends truncated (Platform's own time limit).
MAX_STEPS = 200


class PlatformRaceEnv(MultiAgentEnv):
    """Two players race across the Platform level (see the module docstring).

    Args:
        config: RLlib's env config (unused; accepted so RLlib can build the env).
    """

    def __init__(self, config=None):
        super().__init__()
        from rllib_ext.envs.wrappers import make

        self.lanes = {player: make("rllib_ext/Platform-v0", scale=True) for player in PLAYERS}
        lane = self.lanes[PLAYERS[0]]
        observation_space = spaces.Box(-1.0, 1.0, (lane.observation_space.shape[0] + 2,),
                                       np.float32)
        self.agents = self.possible_agents = list(PLAYERS)
        self.observation_spaces = {player: observation_space for player in PLAYERS}
        self.action_spaces = {player: lane.action_space for player in PLAYERS}
        self._lane_obs: dict[str, np.ndarray] = {}
        self._racing: set[str] = set()
        self._t = 0

    def _progress(self, player: str) -> float:
        """Lane progress x / 1035 in [0, 1]."""
        unwrapped = self.lanes[player].unwrapped
        return min(unwrapped.player.x / unwrapped.right_bound, 1.0)

    def _observation(self, player: str) -> np.ndarray:
        other = PLAYERS[1 - PLAYERS.index(player)]
        extra = [2.0 * self._progress(other) - 1.0, 1.0 if other in self._racing else -1.0]
        return np.concatenate([self._lane_obs[player], extra]).astype(np.float32)

    def reset(self, *, seed=None, options=None):
        gym.Env.reset(self, seed=seed)
        lane_seed = int(self.np_random.integers(2**31))
        for player, lane in self.lanes.items():
            self._lane_obs[player], _ = lane.reset(seed=lane_seed)
        self._racing, self._t = set(PLAYERS), 0
        self.agents = list(PLAYERS)
        return {player: self._observation(player) for player in PLAYERS}, {}

    def step(self, action_dict):
        self._t += 1
        rewards, finished, out = {}, [], []
        for player in sorted(self._racing):
            if player not in action_dict:
                raise ValueError(f"{player} is still racing but has no action.")
            obs, reward, terminated, _, _ = self.lanes[player].step(action_dict[player])
            self._lane_obs[player], rewards[player] = obs, float(reward)
            if terminated:
                unwrapped = self.lanes[player].unwrapped
                (finished if unwrapped.player.x >= unwrapped.right_bound else out).append(player)
        stepped = sorted(self._racing)
        self._racing -= set(finished) | set(out)
        over = bool(finished) or not self._racing
        truncated = not over and self._t >= MAX_STEPS
        for player in finished:
            rewards[player] += WIN_BONUS
        done = set(stepped) if (over or truncated) else set(finished) | set(out)
        observations = {player: self._observation(player) for player in stepped}
        terminateds = {player: player in done and not truncated for player in stepped}
        truncateds = {player: truncated for player in stepped}
        terminateds["__all__"], truncateds["__all__"] = over, truncated
        infos = {player: {"winner": player in finished} for player in stepped
                 if player in done}
        if over or truncated:
            self._racing = set()
        # RLlib: ``agents`` lists the ids this step returned (the ones that just left too).
        self.agents = stepped
        return observations, rewards, terminateds, truncateds, infos

    @property
    def racing(self) -> list[str]:
        """The players still racing: those who act next step."""
        return sorted(self._racing)


def policy_per_player(agent_id, episode=None, **kwargs) -> str:
    """RLlib policy mapping: each player its own policy, named like the player."""
    return str(agent_id)
