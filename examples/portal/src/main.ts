// A portal page: lists an organisation's programs and registers a participant, through the
// gateway's HTTP/JSON (Connect) API with the client generated from proto/ (src/gen).
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { Role } from "./gen/mentoring/v1/common_pb";
import { EnrollmentService } from "./gen/mentoring/v1/enrollment_pb";
import { ProgramStatus } from "./gen/mentoring/v1/events_pb";

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
}

const input = (id: string): string => element<HTMLInputElement>(id).value.trim();

// The fragment never reaches a server's logs, unlike a query string: the place for a token.
const given = new URLSearchParams(location.hash.slice(1) || location.search);
for (const id of ["api", "org", "token"]) {
  const value = given.get(id);
  if (value) element<HTMLInputElement>(id).value = value;
}

function enrollment(): Client<typeof EnrollmentService> {
  const token = input("token");
  const bearer: Interceptor = (next) => async (request) => {
    if (token) request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
  const transport = createConnectTransport({
    baseUrl: input("api"),
    // Read-only RPCs (NO_SIDE_EFFECTS in the proto) go out as GET, which caches understand.
    useHttpGet: true,
    interceptors: [bearer],
  });
  return createClient(EnrollmentService, transport);
}

function report(text: string, failed = false): void {
  const status = element("status");
  status.textContent = text;
  status.classList.toggle("error", failed);
}

async function attempt(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (error) {
    const failure = ConnectError.from(error);
    // The message names the field for invalid input ("email: is required").
    report(`${Code[failure.code]}: ${failure.rawMessage}`, true);
  }
}

async function listPrograms(): Promise<void> {
  const { programs } = await enrollment().listPrograms({ organizationId: input("org") });
  const list = element("programs");
  const choice = element<HTMLSelectElement>("program");
  list.replaceChildren();
  choice.replaceChildren();
  for (const program of programs) {
    const item = document.createElement("li");
    item.dataset.programId = program.programId;
    item.textContent = `${program.name} (${ProgramStatus[program.status]})`;
    list.append(item);
    choice.append(new Option(program.name, program.programId));
  }
  report(`${programs.length} program(s)`);
}

async function register(): Promise<void> {
  const mentor = element<HTMLSelectElement>("role").value === "mentor";
  const participant = await enrollment().registerParticipant({
    organizationId: input("org"),
    programId: element<HTMLSelectElement>("program").value,
    role: mentor ? Role.MENTOR : Role.MENTEE,
    displayName: input("name"),
    email: input("email"),
    skills: input("skills")
      .split(",")
      .map((skill) => skill.trim())
      .filter(Boolean),
    capacity: mentor ? Number(input("capacity")) : 0,
  });
  const registered = element("registered");
  registered.dataset.participantId = participant.participantId;
  registered.textContent = `Registered ${participant.displayName} as ${participant.participantId}`;
  report("registered");
}

element("list").addEventListener("click", () => void attempt(listPrograms));
element<HTMLFormElement>("register").addEventListener("submit", (event) => {
  event.preventDefault();
  void attempt(register);
});
