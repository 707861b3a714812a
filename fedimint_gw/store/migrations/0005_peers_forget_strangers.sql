-- 0005: strangers leave no stored trace (issue 15, finding 2). A node that said hello without being
-- added by the operator used to get a row ('introduced'); a flood of hellos made a flood of rows.
-- Those rows are dropped (they can hold no ledger entry or settlement: such nodes were refused every
-- other message). Their introductions now live in a bounded, expiring, in-memory list.
DELETE FROM peers
WHERE state = 'introduced'
  AND node_id NOT IN (SELECT node_id FROM peer_ledger)
  AND node_id NOT IN (SELECT node_id FROM peer_settlements);
