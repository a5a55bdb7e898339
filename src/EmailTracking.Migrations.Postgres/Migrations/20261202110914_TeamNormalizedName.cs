using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace EmailTracking.Migrations.Postgres.Migrations
{
    /// <inheritdoc />
    public partial class TeamNormalizedName : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "NormalizedName",
                table: "Teams",
                type: "character varying(240)",
                maxLength: 240,
                nullable: false,
                defaultValue: "");

            // Teams already stored get their name as Team.Normalize gives it (upper() under the C collation folds ASCII
            // letters only, as it does). Names that differ only in case were two teams until now: the earliest keeps the
            // plain normalised name, each later one gets " #" and its id appended (its name, as shown, is kept), so that
            // the unique index can be made and no team is merged or lost. They are still found by their exact names.
            migrationBuilder.Sql("""
                UPDATE "Teams" AS t SET "NormalizedName" = upper(btrim(t."Name") COLLATE "C") ||
                    CASE WHEN EXISTS (SELECT 1 FROM "Teams" AS e WHERE upper(btrim(e."Name") COLLATE "C") = upper(btrim(t."Name") COLLATE "C")
                        AND (e."CreatedAt", e."Id") < (t."CreatedAt", t."Id"))
                    THEN ' #' || t."Id"::text ELSE '' END;
                """);

            migrationBuilder.CreateIndex(
                name: "IX_Teams_NormalizedName",
                table: "Teams",
                column: "NormalizedName",
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_Teams_NormalizedName",
                table: "Teams");

            migrationBuilder.DropColumn(
                name: "NormalizedName",
                table: "Teams");
        }
    }
}
