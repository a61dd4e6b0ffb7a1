-- The database of the PostgreSQL end-to-end tests (tests/postgres/): a
-- small dealer management schema that touches every feature a logical
-- capture has to carry. Deterministic: loading it twice gives the same rows.
-- Roles are cluster-wide, so they are created only when missing (the file
-- may be loaded into several databases of one cluster).

SET client_min_messages = warning;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dms_app') THEN
        CREATE ROLE dms_app LOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dms_report') THEN
        CREATE ROLE dms_report NOLOGIN;
    END IF;
END
$$;

CREATE EXTENSION citext;

CREATE SCHEMA sales;
CREATE SCHEMA audit AUTHORIZATION dms_app;
CREATE SCHEMA "Kunden Übersicht";
COMMENT ON SCHEMA sales IS 'orders, customers, invoices';

-- Types: enum, composite, domains.
CREATE TYPE sales.status AS ENUM ('draft', 'open', 'paid', 'cancelled');
ALTER TYPE sales.status ADD VALUE 'on hold' BEFORE 'paid';
CREATE TYPE sales.address AS (street text, zip text, city text, country char(2));
CREATE DOMAIN sales.positive_amount AS numeric(12, 2) CHECK (VALUE > 0);
CREATE DOMAIN sales.email AS citext CHECK (VALUE ~ '^[^@]+@[^@]+$');
COMMENT ON TYPE sales.status IS 'life cycle of an order';

-- Functions and triggers.
CREATE FUNCTION sales.touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated := TIMESTAMPTZ '2024-06-01 12:00:00+00';
    RETURN NEW;
END
$$;

CREATE TABLE audit.log (
    id bigserial PRIMARY KEY,
    tbl text NOT NULL,
    op text NOT NULL,
    row_data jsonb
);
ALTER TABLE audit.log OWNER TO dms_app;

CREATE FUNCTION audit.record() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    INSERT INTO audit.log (tbl, op, row_data)
    VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_OP, to_jsonb(NEW));
    RETURN NEW;
END
$$;
ALTER FUNCTION audit.record() OWNER TO dms_app;
COMMENT ON FUNCTION audit.record() IS 'writes one audit row per change';

CREATE FUNCTION sales.net(amount numeric, vat_percent numeric DEFAULT 19)
RETURNS numeric LANGUAGE sql IMMUTABLE AS $$ SELECT round(amount / (1 + vat_percent / 100), 2) $$;

-- Customers: identity (ALWAYS), generated column, composite and enum arrays,
-- a dropped column.
CREATE TABLE sales.customers (
    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    obsolete text,
    email sales.email UNIQUE,
    address sales.address,
    old_addresses sales.address[],
    tags text[],
    status sales.status NOT NULL DEFAULT 'open',
    history sales.status[],
    updated timestamptz,
    name_upper text GENERATED ALWAYS AS (upper(name)) STORED
);
ALTER TABLE sales.customers DROP COLUMN obsolete;
COMMENT ON TABLE sales.customers IS 'Kunden (customers)';
COMMENT ON COLUMN sales.customers.name IS 'full name, as printed on invoices';
CREATE TRIGGER customers_touch BEFORE INSERT OR UPDATE ON sales.customers
    FOR EACH ROW EXECUTE FUNCTION sales.touch();
CREATE TRIGGER customers_audit AFTER INSERT OR UPDATE ON sales.customers
    FOR EACH ROW EXECUTE FUNCTION audit.record();
CREATE INDEX customers_name_lower ON sales.customers (lower(name));

INSERT INTO sales.customers (name, email, address, old_addresses, tags, status, history)
SELECT 'Kunde ' || i,
       CASE WHEN i % 7 = 0 THEN NULL ELSE 'Kunde' || i || '@Example.com' END,
       ROW('Hauptstraße ' || i, lpad((10000 + i)::text, 5, '0'), 'Köln', 'DE')::sales.address,
       CASE WHEN i % 3 = 0 THEN ARRAY[ROW('Alte Gasse 1', '50667', 'Köln', 'DE')::sales.address,
                                      ROW(NULL, NULL, 'a "quoted", city', NULL)::sales.address]
            WHEN i % 3 = 1 THEN '{}'::sales.address[] END,
       ARRAY['vip', 'tag with space', 'comma,inside', 'quote"inside', NULL],
       (ARRAY['draft', 'open', 'on hold', 'paid', 'cancelled']::sales.status[])[1 + i % 5],
       ARRAY['draft', 'open']::sales.status[]
FROM generate_series(1, 200) AS i;
UPDATE sales.customers SET tags = NULL WHERE id % 11 = 0;

-- Orders: a partitioned table with a default partition, a sequence-backed
-- key, a domain, jsonb.
CREATE SEQUENCE sales.order_id_seq;
CREATE TABLE sales.orders (
    id bigint NOT NULL DEFAULT nextval('sales.order_id_seq'),
    customer_id int NOT NULL REFERENCES sales.customers (id),
    ordered date NOT NULL,
    total sales.positive_amount NOT NULL,
    net numeric GENERATED ALWAYS AS (sales.net(total)) STORED,
    status sales.status NOT NULL,
    lines jsonb,
    PRIMARY KEY (id, ordered)
) PARTITION BY RANGE (ordered);
ALTER SEQUENCE sales.order_id_seq OWNED BY sales.orders.id;
CREATE TABLE sales.orders_2023 PARTITION OF sales.orders
    FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE sales.orders_2024 PARTITION OF sales.orders
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE sales.orders_other PARTITION OF sales.orders DEFAULT;
CREATE INDEX orders_customer ON sales.orders (customer_id);
CREATE INDEX orders_open ON sales.orders (ordered) WHERE status = 'open';

INSERT INTO sales.orders (customer_id, ordered, total, status, lines)
SELECT 1 + i % 200,
       DATE '2022-12-01' + (i * 7) % 800,
       (i * 13.37 + 1)::numeric(12, 2),
       (ARRAY['open', 'on hold', 'paid', 'cancelled']::sales.status[])[1 + i % 4],
       jsonb_build_object('items', jsonb_build_array(jsonb_build_object('sku', 'SKU-' || i, 'qty', i % 5 + 1)),
                          'note', CASE WHEN i % 9 = 0 THEN 'zwölf "Boxen"' || E'\n' || 'Zeile 2' END,
                          'float', i / 3.0)
FROM generate_series(1, 3000) AS i;

-- Every awkward value once, and every NULL.
CREATE TABLE sales.kitchen_sink (
    id int PRIMARY KEY,
    b bytea,
    j jsonb,
    js json,
    x xml,
    r int4range,
    tr tstzrange,
    ip inet,
    net cidr,
    mac macaddr,
    u uuid,
    m money,
    n numeric,
    f float8,
    f4 real,
    iv interval,
    d date,
    ti time,
    ts timestamp,
    tz timestamptz,
    bits varbit,
    pt point,
    txt text,
    ch char(5),
    vc varchar(20),
    bo boolean,
    tsv tsvector,
    grid int[][],
    nums numeric[],
    ranges int4range[]
);
INSERT INTO sales.kitchen_sink VALUES
    (1, '\x00ff5c0a0d09'::bytea, '{"a": [1, 2.50, null, true], "ü": "\u00fc \\ \""}', '{"keep":  "spacing" }',
     '<doc lang="de"><p>Grüße &amp; "mehr"</p></doc>', '[1,10)', '[2024-01-01 00:00+00,2024-02-01 00:00+00)',
     '192.168.1.10/24', '10.0.0.0/8', '08:00:2b:01:02:03', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 1234.56,
     '123456789012345678901234567890.123456789', 0.1, 3.14159, '1 year 2 mons 3 days 04:05:06.789',
     '2024-02-29', '23:59:59.999999', '2024-12-31 23:59:59.5', '2024-03-31 02:30:00+02', B'1011001',
     '(1.5,-2.25)', E'tab\there\nnewline\r\ncrlf back\\slash \\N not null', 'ab', 'varchar', true,
     to_tsvector('simple', 'Die schnelle Füchsin'), '{{1,2},{3,4}}', '{1.5,NaN,-0}', '{"[1,2)","empty"}'),
    (2, '\x'::bytea, '[]', 'null', '<empty/>', 'empty', '(,)', '::1', '::/0', '00:00:00:00:00:00',
     '00000000-0000-0000-0000-000000000000', -0.01, 'NaN', 'NaN', '-Infinity', '-178000000 years',
     'infinity', '00:00', '-infinity', '4713-01-01 00:00:00+00 BC', B'', '(0,0)', '', '', '', false,
     '', '{}', '{}', '{}'),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (4, decode(repeat('deadbeef', 4096), 'hex'), '{"nested": {"deep": {"deeper": [[[]]]}}}', '1e400',
     '<?xml version="1.0"?><r/>', '[-2147483648,2147483647)', '[-infinity,infinity]', '2001:db8::ff00:42:8329',
     '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '-92233720368547758.08',
     '1e-130', 1e-300, 'Infinity', '-00:00:00.000001', '0001-01-01 BC', '24:00', '294276-12-31 23:59:59.999999',
     'epoch', repeat('1', 100)::varbit, '(1e-300,1e300)', repeat(E'Zeile\t\\\n', 500) || '😀 e' || U&'\0301',
     'ü', repeat('x', 20), NULL, 'a:1A b:2B', '{{NULL,2},{3,NULL}}', '{NULL}', '{NULL,"(,)"}');

-- Quoted and non-ASCII identifiers, a keyword as a column name.
CREATE TABLE "Kunden Übersicht"."weird""name" (
    "Straße" text,
    "Mixed Case" int,
    "select" boolean,
    "with space" numeric(5, 1) DEFAULT 1.5,
    "Ünïcödé ✓" text
);
INSERT INTO "Kunden Übersicht"."weird""name"
SELECT 'Weg ' || i, i, i % 2 = 0, i / 10.0, repeat('✓', i % 4)
FROM generate_series(1, 50) AS i;
CREATE VIEW "Kunden Übersicht"."Übersicht" AS
    SELECT "Straße", "Mixed Case" FROM "Kunden Übersicht"."weird""name" WHERE "select";

-- Identity columns, a range with an exclusion constraint.
CREATE TABLE sales.invoices (
    no bigint GENERATED ALWAYS AS IDENTITY (START WITH 1000 INCREMENT BY 10) PRIMARY KEY,
    customer_id int REFERENCES sales.customers (id) ON DELETE SET NULL,
    period tstzrange NOT NULL,
    amount sales.positive_amount,
    EXCLUDE USING gist (period WITH &&)
);
INSERT INTO sales.invoices (customer_id, period, amount)
SELECT 1 + i % 200, tstzrange(TIMESTAMPTZ '2024-01-01 00:00+00' + i * INTERVAL '1 day',
                              TIMESTAMPTZ '2024-01-01 00:00+00' + (i + 1) * INTERVAL '1 day'), i + 0.99
FROM generate_series(1, 120) AS i;
CREATE TABLE sales.credit_notes (
    id smallint GENERATED BY DEFAULT AS IDENTITY,
    invoice_no bigint REFERENCES sales.invoices (no),
    reason text CHECK (length(reason) > 2)
);
INSERT INTO sales.credit_notes (invoice_no, reason) VALUES (1010, 'damaged'), (1020, 'returned');
INSERT INTO sales.credit_notes (id, invoice_no, reason) VALUES (100, NULL, 'manual');

-- Sequences: used, set with is_called false, untouched.
CREATE SEQUENCE sales.invoice_print_no START 5000;
SELECT setval('sales.invoice_print_no', 5042, true);
CREATE SEQUENCE audit.batch_no INCREMENT BY -1 MINVALUE -1000 MAXVALUE -1 START -1;
SELECT setval('audit.batch_no', -17, false);
CREATE SEQUENCE audit.untouched CYCLE;

-- Views, materialized views (one populated, one not), an index on a matview.
CREATE VIEW sales.customer_totals AS
    SELECT c.id, c.name, count(o.*) AS orders, sum(o.total) AS total
    FROM sales.customers c LEFT JOIN sales.orders o ON o.customer_id = c.id
    GROUP BY c.id, c.name;
CREATE MATERIALIZED VIEW sales.mv_totals AS SELECT * FROM sales.customer_totals;
CREATE UNIQUE INDEX mv_totals_id ON sales.mv_totals (id);
CREATE MATERIALIZED VIEW sales.mv_by_status AS
    SELECT status, count(*) AS n FROM sales.mv_totals JOIN sales.customers USING (id) GROUP BY status;
CREATE MATERIALIZED VIEW sales.mv_never_refreshed AS SELECT id, name FROM sales.customers WITH NO DATA;

-- A table owned by the application role, with row-level security.
CREATE TABLE sales.notes (
    id serial PRIMARY KEY,
    author text NOT NULL DEFAULT current_user,
    body text
);
ALTER TABLE sales.notes OWNER TO dms_app;
INSERT INTO sales.notes (author, body) VALUES ('dms_app', 'visible to the app'), ('dms_report', 'for the report');
ALTER TABLE sales.notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY notes_by_author ON sales.notes USING (author = current_user);

-- Inheritance (not partitioning): COPY of the parent must not take the child's rows.
CREATE TABLE audit.log_archive (archived date) INHERITS (audit.log);
INSERT INTO audit.log_archive (tbl, op, archived) VALUES ('sales.customers', 'DELETE', '2020-01-01');
ALTER TABLE audit.log_archive OWNER TO dms_app;

-- Empty and unlogged tables.
CREATE TABLE audit.empty_table (id int PRIMARY KEY, payload jsonb);
CREATE UNLOGGED TABLE audit.cache (k text PRIMARY KEY, v bytea);
INSERT INTO audit.cache VALUES ('a', '\x01'), ('b', NULL);

-- A few MB of rows (tables are split into page ranges only above 64 MiB).
CREATE TABLE sales.events (
    id bigint PRIMARY KEY,
    at timestamptz NOT NULL,
    kind text NOT NULL,
    payload text
);
INSERT INTO sales.events
SELECT i, TIMESTAMPTZ '2024-01-01 00:00+00' + i * INTERVAL '1 second',
       (ARRAY['login', 'view', 'edit', 'print'])[1 + i % 4],
       md5(i::text) || md5((i * 7)::text) || CASE WHEN i % 100 = 0 THEN E'\t\\x' END
FROM generate_series(1, 30000) AS i;
DELETE FROM sales.events WHERE id % 50 = 0;
CREATE STATISTICS sales.events_kind_at (dependencies) ON kind, at FROM sales.events;

-- Large objects: a small one, an empty one, one over 1 MiB owned by the app.
SELECT lo_from_bytea(424242, 'hello large object'::bytea);
SELECT lo_from_bytea(424243, ''::bytea);
SELECT lo_from_bytea(424244, (SELECT string_agg(sha256(int4send(i)), ''::bytea ORDER BY i)
                              FROM generate_series(1, 80000) AS i));
ALTER LARGE OBJECT 424244 OWNER TO dms_app;
GRANT SELECT ON LARGE OBJECT 424244 TO dms_report;

-- Privileges.
GRANT USAGE ON SCHEMA sales TO dms_report, dms_app;
GRANT SELECT ON ALL TABLES IN SCHEMA sales TO dms_report;
GRANT SELECT, INSERT, UPDATE ON sales.customers, sales.orders TO dms_app;
GRANT SELECT (id, txt) ON sales.kitchen_sink TO dms_app;
GRANT USAGE ON SEQUENCE sales.order_id_seq TO dms_app;
GRANT EXECUTE ON FUNCTION sales.net(numeric, numeric) TO dms_report;
REVOKE EXECUTE ON FUNCTION sales.net(numeric, numeric) FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA sales GRANT SELECT ON TABLES TO dms_report;

ANALYZE;
