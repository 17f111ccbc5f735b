"""Full-text search over the catalogue: a GIN index on each item's weighted tsvector.

The vector is built by one IMMUTABLE SQL function (title weight A, categories B, text C,
PostgreSQL's ``english`` configuration) so the index expression and the search query
(``recsys.services.search``) cannot drift apart. ``array_to_string`` is only STABLE in
PostgreSQL (element output may depend on settings); for text arrays it does not, hence
the function's IMMUTABLE label, the usual way to index a tsvector of several columns.
"""
from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION recsys_item_tsvector(title text, body text, categories varchar(64)[])
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A')
      || setweight(to_tsvector('english'::regconfig, coalesce(array_to_string(categories, ' '), '')), 'B')
      || setweight(to_tsvector('english'::regconfig, coalesce(body, '')), 'C')
$$;
"""
INDEX = ("CREATE INDEX IF NOT EXISTS recsys_item_search ON recsys_item "
         "USING GIN (recsys_item_tsvector(title, text, categories))")


class Migration(migrations.Migration):
    dependencies = [("recsys", "0007_visitorprofile_interest_vectors")]

    operations = [
        migrations.RunSQL(FUNCTION, "DROP FUNCTION IF EXISTS recsys_item_tsvector(text, text, varchar(64)[])"),
        migrations.RunSQL(INDEX, "DROP INDEX IF EXISTS recsys_item_search"),
    ]
