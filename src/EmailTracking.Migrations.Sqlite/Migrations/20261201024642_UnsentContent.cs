using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace EmailTracking.Migrations.Sqlite.Migrations
{
    /// <inheritdoc />
    public partial class UnsentContent : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<byte[]>(
                name: "ResendClaim",
                table: "Copies",
                type: "BLOB",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "ResendClaimedAt",
                table: "Copies",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "UnsentContents",
                columns: table => new
                {
                    TrackedMessageId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    MailboxId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    Html = table.Column<string>(type: "TEXT", nullable: false),
                    Text = table.Column<string>(type: "TEXT", nullable: true),
                    KeptUntil = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_UnsentContents", x => x.TrackedMessageId);
                    table.ForeignKey(
                        name: "FK_UnsentContents_Messages_TrackedMessageId",
                        column: x => x.TrackedMessageId,
                        principalTable: "Messages",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "UnsentAttachments",
                columns: table => new
                {
                    Id = table.Column<byte[]>(type: "BLOB", nullable: false),
                    TrackedMessageId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    Ordinal = table.Column<int>(type: "INTEGER", nullable: false),
                    FileName = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    MediaType = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    Content = table.Column<byte[]>(type: "BLOB", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_UnsentAttachments", x => x.Id);
                    table.ForeignKey(
                        name: "FK_UnsentAttachments_UnsentContents_TrackedMessageId",
                        column: x => x.TrackedMessageId,
                        principalTable: "UnsentContents",
                        principalColumn: "TrackedMessageId",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_Copies_ResendClaim",
                table: "Copies",
                column: "ResendClaim",
                filter: "\"ResendClaim\" IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "IX_UnsentAttachments_TrackedMessageId",
                table: "UnsentAttachments",
                column: "TrackedMessageId");

            migrationBuilder.CreateIndex(
                name: "IX_UnsentContents_KeptUntil",
                table: "UnsentContents",
                column: "KeptUntil");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "UnsentAttachments");

            migrationBuilder.DropTable(
                name: "UnsentContents");

            migrationBuilder.DropIndex(
                name: "IX_Copies_ResendClaim",
                table: "Copies");

            migrationBuilder.DropColumn(
                name: "ResendClaim",
                table: "Copies");

            migrationBuilder.DropColumn(
                name: "ResendClaimedAt",
                table: "Copies");
        }
    }
}
