-- Issue 13 item 3 / issue 11: the monthly report counts outbound usage, 手上げ and
-- complaints.  plan_outbound: the client's plan counts outbound calls too (answered ones when
-- plan_counts = answered, every placed one when offered).
ALTER TABLE clients ADD COLUMN plan_outbound boolean NOT NULL DEFAULT false;
CREATE INDEX handraises_client_time ON handraises (client, held_at);
CREATE INDEX callee_messages_sent ON callee_messages (client, sent_at) WHERE state = 'sent';
