using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace EmailTracking.Migrations.Sqlite.Migrations
{
    /// <inheritdoc />
    public partial class Mailboxes : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "ProviderThreadId",
                table: "Copies",
                type: "TEXT",
                maxLength: 200,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "SentMessageIdHeader",
                table: "Copies",
                type: "TEXT",
                maxLength: 250,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "ThreadIndex",
                table: "Copies",
                type: "TEXT",
                maxLength: 40,
                nullable: true);

            migrationBuilder.CreateTable(
                name: "InboundMessages",
                columns: table => new
                {
                    Id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    TeamId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    UserId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    ConnectionId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    ProviderId = table.Column<string>(type: "TEXT", maxLength: 300, nullable: false),
                    InternetMessageId = table.Column<string>(type: "TEXT", maxLength: 500, nullable: true),
                    FromAddress = table.Column<string>(type: "TEXT", maxLength: 320, nullable: false),
                    Subject = table.Column<string>(type: "TEXT", maxLength: 1000, nullable: true),
                    ReceivedAt = table.Column<long>(type: "INTEGER", nullable: false),
                    Kind = table.Column<int>(type: "INTEGER", nullable: false),
                    Reason = table.Column<string>(type: "TEXT", maxLength: 300, nullable: false),
                    TrackedMessageId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    CopyId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    RecipientId = table.Column<byte[]>(type: "BLOB", nullable: true),
                    MatchedBy = table.Column<int>(type: "INTEGER", nullable: false),
                    ReplierRole = table.Column<int>(type: "INTEGER", nullable: false),
                    ReturnDate = table.Column<DateOnly>(type: "TEXT", nullable: true),
                    Status = table.Column<string>(type: "TEXT", maxLength: 20, nullable: true),
                    Permanent = table.Column<bool>(type: "INTEGER", nullable: true),
                    Excerpt = table.Column<string>(type: "TEXT", maxLength: 500, nullable: true),
                    HandledAt = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_InboundMessages", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "Mailboxes",
                columns: table => new
                {
                    Id = table.Column<byte[]>(type: "BLOB", nullable: false),
                    TeamId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    UserId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    Kind = table.Column<int>(type: "INTEGER", nullable: false),
                    Address = table.Column<string>(type: "TEXT", maxLength: 320, nullable: false),
                    Status = table.Column<int>(type: "INTEGER", nullable: false),
                    StatusMessage = table.Column<string>(type: "TEXT", maxLength: 1000, nullable: true),
                    ProtectedSecret = table.Column<string>(type: "TEXT", nullable: false),
                    CreatedAt = table.Column<long>(type: "INTEGER", nullable: false),
                    LastSyncAt = table.Column<long>(type: "INTEGER", nullable: true),
                    Failures = table.Column<int>(type: "INTEGER", nullable: false),
                    LeaseOwner = table.Column<string>(type: "TEXT", maxLength: 100, nullable: true),
                    LeaseUntil = table.Column<long>(type: "INTEGER", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_Mailboxes", x => x.Id);
                    table.ForeignKey(
                        name: "FK_Mailboxes_AspNetUsers_UserId",
                        column: x => x.UserId,
                        principalTable: "AspNetUsers",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "MailboxCursors",
                columns: table => new
                {
                    ConnectionId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    Name = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    Value = table.Column<string>(type: "TEXT", maxLength: 4000, nullable: false),
                    UpdatedAt = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_MailboxCursors", x => new { x.ConnectionId, x.Name });
                    table.ForeignKey(
                        name: "FK_MailboxCursors_Mailboxes_ConnectionId",
                        column: x => x.ConnectionId,
                        principalTable: "Mailboxes",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_Copies_ProviderThreadId",
                table: "Copies",
                column: "ProviderThreadId");

            migrationBuilder.CreateIndex(
                name: "IX_Copies_SentMessageIdHeader",
                table: "Copies",
                column: "SentMessageIdHeader");

            migrationBuilder.CreateIndex(
                name: "IX_Copies_ThreadIndex",
                table: "Copies",
                column: "ThreadIndex");

            migrationBuilder.CreateIndex(
                name: "IX_InboundMessages_ConnectionId_ProviderId",
                table: "InboundMessages",
                columns: new[] { "ConnectionId", "ProviderId" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_InboundMessages_TrackedMessageId_Id",
                table: "InboundMessages",
                columns: new[] { "TrackedMessageId", "Id" });

            migrationBuilder.CreateIndex(
                name: "IX_InboundMessages_UserId_InternetMessageId",
                table: "InboundMessages",
                columns: new[] { "UserId", "InternetMessageId" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_Mailboxes_UserId_Kind_Address",
                table: "Mailboxes",
                columns: new[] { "UserId", "Kind", "Address" },
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "InboundMessages");

            migrationBuilder.DropTable(
                name: "MailboxCursors");

            migrationBuilder.DropTable(
                name: "Mailboxes");

            migrationBuilder.DropIndex(
                name: "IX_Copies_ProviderThreadId",
                table: "Copies");

            migrationBuilder.DropIndex(
                name: "IX_Copies_SentMessageIdHeader",
                table: "Copies");

            migrationBuilder.DropIndex(
                name: "IX_Copies_ThreadIndex",
                table: "Copies");

            migrationBuilder.DropColumn(
                name: "ProviderThreadId",
                table: "Copies");

            migrationBuilder.DropColumn(
                name: "SentMessageIdHeader",
                table: "Copies");

            migrationBuilder.DropColumn(
                name: "ThreadIndex",
                table: "Copies");
        }
    }
}
