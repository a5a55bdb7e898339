using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace EmailTracking.Migrations.Sqlite.Migrations
{
    /// <inheritdoc />
    public partial class CopyOwner : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<byte[]>(
                name: "TeamId",
                table: "Copies",
                type: "BLOB",
                nullable: false,
                defaultValue: new byte[0]);

            migrationBuilder.AddColumn<byte[]>(
                name: "UserId",
                table: "Copies",
                type: "BLOB",
                nullable: false,
                defaultValue: new byte[0]);

            // Existing copies take their message's owner (every copy has its message).
            migrationBuilder.Sql("""
                UPDATE "Copies" SET "UserId" = (SELECT "m"."UserId" FROM "Messages" AS "m" WHERE "m"."Id" = "Copies"."TrackedMessageId"), "TeamId" = (SELECT "m"."TeamId" FROM "Messages" AS "m" WHERE "m"."Id" = "Copies"."TrackedMessageId");
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "TeamId",
                table: "Copies");

            migrationBuilder.DropColumn(
                name: "UserId",
                table: "Copies");
        }
    }
}
