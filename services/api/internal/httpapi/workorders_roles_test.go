package httpapi_test

// Role-matrix rows for the work-order routes (the docs' role table as adapted:
// management, the log and schedules are admin-only; claim and complete are
// for the admin and the agent concerned; progress for the claiming agent).

// jobYAML is a small valid custom work order whose content differs per name.
func jobYAML(name string) string {
	return "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: " + name + "\n  namespace: default\n" +
		"spec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: busybox\n"
}

// newOrder creates a PENDING order targeted at the fixture's agent A.
func (f *matrixFixture) newOrder() string {
	var w struct {
		ID string `json:"id"`
	}
	f.e.Must(201, "POST", v1+"/work-orders", f.e.AdminPAK, map[string]any{
		"work_type": "custom", "yaml_content": jobYAML(unique("job")),
		"targeting": map[string]any{"agent_ids": []string{f.a.ID}}}).JSON(f.e.T, &w)
	return w.ID
}

// claimedOrder creates an order and claims it as agent A.
func (f *matrixFixture) claimedOrder() string {
	id := f.newOrder()
	f.e.Must(200, "POST", v1+"/work-orders/"+id+"/claim", f.a.PAK, map[string]string{"agent_id": f.a.ID})
	return id
}

// loggedOrder runs an order to completion and returns its log id.
func (f *matrixFixture) loggedOrder() string {
	id := f.claimedOrder()
	f.e.Must(200, "POST", v1+"/work-orders/"+id+"/complete", f.a.PAK, map[string]any{"success": true, "message": "ok"})
	return id
}

// newSchedule creates a daily schedule targeted at agent A.
func (f *matrixFixture) newSchedule() string {
	var sc struct {
		ID string `json:"id"`
	}
	f.e.Must(201, "POST", v1+"/work-order-schedules", f.e.AdminPAK, map[string]any{
		"name": unique("sched"), "cron_expression": "0 3 * * *", "work_type": "custom",
		"yaml_content": jobYAML("nightly"), "targeting": map[string]any{"labels": []string{"matrix-agent"}}}).JSON(f.e.T, &sc)
	return sc.ID
}

func workOrderRoleRows() []roleRow {
	admin201 := [numWho]int{201, 403, 403, 403, 403}
	orderBody := func(f *matrixFixture) map[string]any {
		return map[string]any{"work_type": "custom", "yaml_content": jobYAML(unique("job")),
			"targeting": map[string]any{"labels": []string{"matrix-agent"}}}
	}
	schedulePath := func(suffix string) func(*matrixFixture, who) call {
		return func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/work-order-schedules/" + f.newSchedule() + suffix}
		}
	}
	return []roleRow{
		{"GET", "/work-orders", adminOnly, path("/work-orders")},
		{"POST", "/work-orders", admin201, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/work-orders", body: orderBody(f)}
		}},
		{"GET", "/work-orders/:id", adminOnly, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/work-orders/" + f.newOrder()}
		}},
		{"DELETE", "/work-orders/:id", adminOnly204, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/work-orders/" + f.newOrder()}
		}},
		// Another agent may not claim on A's behalf; generators never claim.
		{"POST", "/work-orders/:id/claim", adminOrOwnAgent, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/work-orders/" + f.newOrder() + "/claim", body: map[string]string{"agent_id": f.a.ID}}
		}},
		// The order is A's claim: another agent's completion is a conflict
		// (not CLAIMED by the caller: docs/work-orders.md#api).
		{"POST", "/work-orders/:id/complete", [numWho]int{200, 200, 409, 403, 403}, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/work-orders/" + f.claimedOrder() + "/complete", body: map[string]any{"success": true}}
		}},
		{"POST", "/work-orders/:id/progress", [numWho]int{403, 200, 409, 403, 403}, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/work-orders/" + f.claimedOrder() + "/progress", body: map[string]any{"message": "building", "percent": 40}}
		}},
		{"GET", "/agents/:id/work-orders/pending", adminOrOwnAgent, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/agents/" + f.a.ID + "/work-orders/pending"}
		}},
		{"GET", "/work-order-log", adminOnly, path("/work-order-log")},
		{"GET", "/work-order-log/:id", adminOnly, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/work-order-log/" + f.loggedOrder()}
		}},

		{"GET", "/work-order-schedules", adminOnly, path("/work-order-schedules")},
		{"POST", "/work-order-schedules", admin201, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/work-order-schedules", body: map[string]any{"name": unique("s"),
				"cron_expression": "*/5 * * * *", "work_type": "custom", "yaml_content": jobYAML("x"),
				"targeting": map[string]any{"agent_ids": []string{f.a.ID}}}}
		}},
		{"GET", "/work-order-schedules/:id", adminOnly, schedulePath("")},
		{"PUT", "/work-order-schedules/:id", adminOnly, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/work-order-schedules/" + f.newSchedule(), body: map[string]any{"description": "d"}}
		}},
		{"DELETE", "/work-order-schedules/:id", adminOnly204, schedulePath("")},
		{"POST", "/work-order-schedules/:id/enable", adminOnly, schedulePath("/enable")},
		{"POST", "/work-order-schedules/:id/disable", adminOnly, schedulePath("/disable")},
		{"GET", "/work-order-schedules/:id/runs", adminOnly, schedulePath("/runs")},
	}
}
