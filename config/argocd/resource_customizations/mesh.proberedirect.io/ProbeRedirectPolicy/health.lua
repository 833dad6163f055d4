-- Argo CD health check for mesh.proberedirect.io/ProbeRedirectPolicy.
--
-- The policy follows kstatus: status.observedGeneration, Reconciling and Stalled ("abnormal-true")
-- conditions, plus Ready. The check trusts no condition until the operator has observed the current
-- metadata.generation. It uses only the Lua base library, so it runs from argocd-cm without
-- resource.customizations.useOpenLibs.
--
-- ProbesHealthy=False (kubelet "Unhealthy" events for selected pods within a sliding window) does
-- NOT make the policy Degraded. It is reported as Healthy with a warning in the message, because:
--   * the operator did its job: Ready=True means the probes are rewritten on live pods, and kstatus
--     (Current), Flux and `kubectl wait --for=condition=Ready` all report the policy ready; Argo
--     should agree with them;
--   * readiness probes routinely fail while new pods start, including during the rollouts the
--     policy itself triggers, so Degraded would flap the whole Application (app health is the worst
--     child) and fire on-health-degraded notifications on every roll;
--   * pods that never become ready already show in Argo through the built-in Deployment,
--     StatefulSet and DaemonSet health of the same Application;
--   * when the redirection itself breaks probes, the rollout misses progressDeadlineSeconds or the
--     probe is refused up front, and the operator sets Stalled=True (RolloutFailed or
--     UnsupportedProbes), which IS Degraded below.
local hs = {}

local function condition(conditionType)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function messageOf(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

local ready = condition("Ready")

-- 1. The status must describe the current spec. When the operator cannot even read what it needs, it
--    still stamps Ready (Unknown, ObserveFailed) with the current generation: show why it is stuck.
local generation = obj.metadata.generation
if generation ~= nil then
  local observed = nil
  if obj.status ~= nil then
    observed = obj.status.observedGeneration
  end
  if observed == nil or observed < generation then
    hs.status = "Progressing"
    hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
    if ready ~= nil and ready.observedGeneration == generation and ready.status ~= "True" and ready.message ~= nil and ready.message ~= "" then
      hs.message = hs.message .. ": " .. ready.message
    end
    return hs
  end
end

local reconciling = condition("Reconciling")
local stalled = condition("Stalled")
local probesHealthy = condition("ProbesHealthy")

-- 2. spec.suspend: the policy only reports and changes no workload. Checked before Stalled, as in
--    Argo's Flux scripts: a person paused it on purpose, and Ready's message still names any problem.
if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = messageOf(ready, "ProbeRedirectPolicy is suspended")
  return hs
end

-- 3. Stalled=True needs a person: RolloutFailed, InvalidSelector, Conflict, UnsupportedProbes.
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = messageOf(stalled, "Stalled")
  return hs
end

-- 4. Ready=True: every selected workload that needs it is redirected.
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = messageOf(ready, "Ready")
  if probesHealthy ~= nil and probesHealthy.status == "False" then
    hs.message = hs.message .. "; warning: " .. messageOf(probesHealthy, "some selected pods reported Unhealthy")
  end
  return hs
end

-- 5. Annotated, but paused Deployments or OnDelete strategies wait for a person to roll them:
--    the same "waiting for an external event" that Argo reports as Suspended for a paused Deployment.
if ready ~= nil and ready.status == "False" and ready.reason == "ManualRolloutRequired" then
  hs.status = "Suspended"
  hs.message = messageOf(ready, "Manual rollout required")
  return hs
end

-- 6. Work in progress (rolling, queued, retrying) or not decided yet.
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = messageOf(reconciling, "Reconciling")
  return hs
end
if ready ~= nil then
  hs.status = "Progressing"
  hs.message = messageOf(ready, "Waiting for the policy to become Ready")
  return hs
end

hs.status = "Progressing"
hs.message = "Waiting for status"
return hs
