using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace EmailTracking.Migrations.Sqlite.Migrations
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
                type: "TEXT",
                maxLength: 240,
                nullable: false,
                defaultValue: "");

            // Teams already stored get their name as Team.Normalize gives it (SQLite's upper() folds ASCII letters only, as
            // it does). Names that differ only in case were two teams until now: the earliest keeps the plain normalised
            // name, each later one gets " #" and its id appended (its name, as shown, is kept), so that the unique index
            // can be made and no team is merged or lost. They are still found by their exact names.
            migrationBuilder.Sql("""
                UPDATE "Teams" SET "NormalizedName" = upper(trim("Name")) ||
                    CASE WHEN EXISTS (SELECT 1 FROM "Teams" AS e WHERE upper(trim(e."Name")) = upper(trim("Teams"."Name"))
                        AND (e."CreatedAt" < "Teams"."CreatedAt" OR (e."CreatedAt" = "Teams"."CreatedAt" AND e."Id" < "Teams"."Id")))
                    THEN ' #' || lower(hex("Id")) ELSE '' END;
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
