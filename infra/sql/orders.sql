-- The CDC source table and its publication. Idempotent: applied on every
-- infra/postgres.sh start.
CREATE TABLE IF NOT EXISTS public.orders (
  order_id   text PRIMARY KEY,
  account_id text NOT NULL,
  amount     numeric(12, 2) NOT NULL,
  currency   char(3) NOT NULL,
  status     text NOT NULL,
  vip_flag   boolean NOT NULL,
  email      text,
  phone      text,
  ssn_last4  text,
  created_at timestamptz DEFAULT now()
);

-- full before images for updates and deletes
ALTER TABLE public.orders REPLICA IDENTITY FULL;

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'dbz_orders') THEN
    CREATE PUBLICATION dbz_orders FOR TABLE public.orders;
  END IF;
END
$$;
