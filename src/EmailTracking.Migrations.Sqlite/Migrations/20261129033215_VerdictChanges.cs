using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace EmailTracking.Migrations.Sqlite.Migrations
{
    /// <inheritdoc />
    public partial class VerdictChanges : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "VerdictChanges",
                columns: table => new
                {
                    Id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    EventId = table.Column<long>(type: "INTEGER", nullable: false),
                    TeamId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    UserId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    TrackedMessageId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    RecipientId = table.Column<byte[]>(type: "BLOB", nullable: true),
                    Kind = table.Column<int>(type: "INTEGER", nullable: false),
                    From = table.Column<int>(type: "INTEGER", nullable: false),
                    To = table.Column<int>(type: "INTEGER", nullable: false),
                    Reason = table.Column<string>(type: "TEXT", maxLength: 300, nullable: false),
                    ChangedAt = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_VerdictChanges", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_VerdictChanges_TeamId_Id",
                table: "VerdictChanges",
                columns: new[] { "TeamId", "Id" });

            migrationBuilder.CreateIndex(
                name: "IX_VerdictChanges_UserId_Id",
                table: "VerdictChanges",
                columns: new[] { "UserId", "Id" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "VerdictChanges");
        }
    }
}
