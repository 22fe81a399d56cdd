DROP TRIGGER IF EXISTS start_rollout ON deployment_objects;
DROP FUNCTION IF EXISTS brokkr_start_rollout();
DROP TABLE IF EXISTS rollout_events;
DROP TABLE IF EXISTS rollout_agents;
DROP TABLE IF EXISTS rollouts;
DROP TABLE IF EXISTS rollout_policies;
ALTER TABLE deployment_objects DROP COLUMN IF EXISTS rolled_back_from;
