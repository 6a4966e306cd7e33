port module Main exposing (main)

{-| A backend that calls other services with elm/http, served in HTTP mode
(`http=true`): every request is an event `{"id", "method", "path", "query",
"headers", "body"}` on `onEvent`, answered by `{"id", "status", "headers",
"body"}` on `respond`, in that event or a later one.

    POST /fetch   {"url": U, "method": M, "headers": [[name, value], ...],
                   "body": TEXT or "bytes": [0-255, ...], "timeout": MS,
                   "expect": "string" | "bytes" | "json" | "whatever",
                   "task": true, "tracker": NAME}
                  -> starts the request (only "url" is needed); once it is
                     done, answers 200 with what came of it:
                     {"ok": true, "status", "statusText", "url", "headers",
                      "body" | "json" | "bytes" and "first"}, or
                     {"ok": false, "error": "BadUrl U" | "Timeout" |
                      "NetworkError" | "BadStatus" | "BadBody", ...}
    POST /fetch2  {"first": FETCH, "second": FETCH}
                  -> both in one Cmd.batch; answered once both are done:
                     {"first", "second", "completed": in the order they were}
    POST /cancel  {"tracker": NAME} -> Http.cancel NAME, 202 at once
    GET /count    -> {"fetched": n, "last": what came of the last fetch}
    GET /progress -> {TRACKER: [progress events, in order], ...}

Calling a service is the same as anywhere else in Elm; the one thing to
remember is whom to answer, so the request's id rides in the message:

    Http.get { url = "http://127.0.0.1:8000/echo", expect = Http.expectString (GotText id) }

This app uses `Http.request` and `Http.task` instead, to show every option.
elmbox sends only to the hosts it is told to allow (`allow-http=` when
deploying, `--allow-http` with `elmbox run`); the others fail with
`NetworkError`.

-}

import Bytes exposing (Bytes)
import Bytes.Decode
import Bytes.Encode
import Dict exposing (Dict)
import Http
import Json.Decode as Decode exposing (Decoder)
import Json.Encode as Encode
import Task


port onEvent : (Decode.Value -> msg) -> Sub msg


port respond : Encode.Value -> Cmd msg



-- MODEL


{-| How many fetches completed and what came of the last (null before
any); the progress seen, by tracker; the trackers of fetches in flight,
which `subscriptions` tracks; and the half of each /fetch2 that is done
while the other is not, by request id.
-}
type alias Model =
    { fetched : Int
    , last : Encode.Value
    , progress : Dict String (List Http.Progress)
    , tracking : List String
    , halves : Dict String (List ( String, Encode.Value ))
    }


{-| Who waits for a fetch: the client of a /fetch, or one of the two halves
of a /fetch2 ("first" or "second").
-}
type Waiting
    = Client String
    | Half String String


{-| A fetch as a client describes it.
-}
type alias Fetch =
    { method : String
    , url : String
    , headers : List Http.Header
    , body : Http.Body
    , timeout : Maybe Float
    , expect : Expecting
    , task : Bool
    , tracker : Maybe String
    }


type Expecting
    = ExpectString
    | ExpectBytes
    | ExpectJson
    | ExpectWhatever


{-| What came of a fetch, as the fields of the JSON that describes it.
-}
type alias Fields =
    List ( String, Encode.Value )


type Msg
    = Request Decode.Value
    | Fetched Waiting Fetch (Result Fields Fields)
    | Progressed String Http.Progress


main : Program () Model Msg
main =
    Platform.worker
        { init = \_ -> ( Model 0 Encode.null Dict.empty [] Dict.empty, Cmd.none )
        , update = update
        , subscriptions = subscriptions
        }


subscriptions : Model -> Sub Msg
subscriptions model =
    Sub.batch
        (onEvent Request
            :: List.map (\name -> Http.track name (Progressed name)) model.tracking
        )



-- UPDATE


update : Msg -> Model -> ( Model, Cmd Msg )
update msg model =
    case msg of
        Request value ->
            let
                field name =
                    Decode.decodeValue (Decode.field name Decode.string) value
                        |> Result.withDefault ""

                id =
                    field "id"
            in
            case ( field "method", field "path" ) of
                ( "POST", "/fetch" ) ->
                    case Decode.decodeString fetchDecoder (field "body") of
                        Ok spec ->
                            ( { model | tracking = watch spec model.tracking }, start (Client id) spec )

                        Err error ->
                            ( model, badRequest id error )

                ( "POST", "/fetch2" ) ->
                    case Decode.decodeString fetch2Decoder (field "body") of
                        Ok ( first, second ) ->
                            ( { model | tracking = watch second (watch first model.tracking) }
                            , Cmd.batch [ start (Half id "first") first, start (Half id "second") second ]
                            )

                        Err error ->
                            ( model, badRequest id error )

                ( "POST", "/cancel" ) ->
                    case Decode.decodeString (Decode.field "tracker" Decode.string) (field "body") of
                        Ok name ->
                            ( { model | tracking = List.filter ((/=) name) model.tracking }
                            , Cmd.batch
                                [ Http.cancel name
                                , answer id 202 (Encode.object [ ( "cancelled", Encode.string name ) ])
                                ]
                            )

                        Err error ->
                            ( model, badRequest id error )

                ( "GET", "/count" ) ->
                    ( model
                    , answer id 200 (Encode.object [ ( "fetched", Encode.int model.fetched ), ( "last", model.last ) ])
                    )

                ( "GET", "/progress" ) ->
                    ( model, answer id 200 (Encode.dict identity (Encode.list encodeProgress) model.progress) )

                ( _, path ) ->
                    ( model, answer id 404 (Encode.object [ ( "error", Encode.string ("no " ++ path) ) ]) )

        Fetched waiting spec result ->
            let
                outcome =
                    case result of
                        Ok fields ->
                            Encode.object (( "ok", Encode.bool True ) :: fields)

                        Err fields ->
                            Encode.object (( "ok", Encode.bool False ) :: fields)

                done =
                    { model
                        | fetched = model.fetched + 1
                        , last = outcome
                        , tracking = List.filter (\name -> Just name /= spec.tracker) model.tracking
                    }
            in
            case waiting of
                Client id ->
                    ( done, answer id 200 outcome )

                Half id part ->
                    case Dict.get id model.halves of
                        Nothing ->
                            ( { done | halves = Dict.insert id [ ( part, outcome ) ] model.halves }, Cmd.none )

                        Just earlier ->
                            let
                                both =
                                    earlier ++ [ ( part, outcome ) ]
                            in
                            ( { done | halves = Dict.remove id model.halves }
                            , answer id 200 <|
                                Encode.object
                                    (List.sortBy Tuple.first both
                                        ++ [ ( "completed", Encode.list (Tuple.first >> Encode.string) both ) ]
                                    )
                            )

        Progressed name progress ->
            ( { model
                | progress =
                    Dict.update name
                        (\seen -> Just (Maybe.withDefault [] seen ++ [ progress ]))
                        model.progress
              }
            , Cmd.none
            )


{-| Subscribe to a fetch's progress while it is in flight.
-}
watch : Fetch -> List String -> List String
watch spec tracking =
    case spec.tracker of
        Just name ->
            if List.member name tracking then
                tracking

            else
                tracking ++ [ name ]

        Nothing ->
            tracking


answer : String -> Int -> Encode.Value -> Cmd msg
answer id status body =
    respond
        (Encode.object
            [ ( "id", Encode.string id )
            , ( "status", Encode.int status )
            , ( "headers", Encode.object [ ( "content-type", Encode.string "application/json" ) ] )
            , ( "body", Encode.string (Encode.encode 0 body) )
            ]
        )


badRequest : String -> Decode.Error -> Cmd msg
badRequest id error =
    answer id 400 (Encode.object [ ( "error", Encode.string (Decode.errorToString error) ) ])



-- CALLING OTHER SERVICES


{-| Start a fetch, with `Http.request`, or with `Http.task` when asked.
-}
start : Waiting -> Fetch -> Cmd Msg
start waiting spec =
    if spec.task then
        Http.task
            { method = spec.method
            , headers = spec.headers
            , url = spec.url
            , body = spec.body
            , resolver = resolver spec.expect
            , timeout = spec.timeout
            }
            |> Task.attempt (Fetched waiting spec)

    else
        Http.request
            { method = spec.method
            , headers = spec.headers
            , url = spec.url
            , body = spec.body
            , expect = expectation (Fetched waiting spec) spec.expect
            , timeout = spec.timeout
            , tracker = spec.tracker
            }


expectation : (Result Fields Fields -> msg) -> Expecting -> Http.Expect msg
expectation toMsg expecting =
    case expecting of
        ExpectString ->
            Http.expectStringResponse toMsg (resolve textFields (textFields >> Ok))

        ExpectJson ->
            Http.expectStringResponse toMsg (resolve textFields readJson)

        ExpectBytes ->
            Http.expectBytesResponse toMsg (resolve bytesFields (bytesFields >> Ok))

        ExpectWhatever ->
            Http.expectBytesResponse toMsg (resolve (\_ -> []) (\_ -> Ok []))


resolver : Expecting -> Http.Resolver Fields Fields
resolver expecting =
    case expecting of
        ExpectString ->
            Http.stringResolver (resolve textFields (textFields >> Ok))

        ExpectJson ->
            Http.stringResolver (resolve textFields readJson)

        ExpectBytes ->
            Http.bytesResolver (resolve bytesFields (bytesFields >> Ok))

        ExpectWhatever ->
            Http.bytesResolver (resolve (\_ -> []) (\_ -> Ok []))


{-| Every response, good or bad, with its metadata: `keep` describes the
body of a bad status, `read` the body of a good one (and may reject it).
-}
resolve : (body -> Fields) -> (body -> Result String Fields) -> Http.Response body -> Result Fields Fields
resolve keep read response =
    case response of
        Http.BadUrl_ url ->
            Err [ ( "error", Encode.string ("BadUrl " ++ url) ) ]

        Http.Timeout_ ->
            Err [ ( "error", Encode.string "Timeout" ) ]

        Http.NetworkError_ ->
            Err [ ( "error", Encode.string "NetworkError" ) ]

        Http.BadStatus_ metadata body ->
            Err (( "error", Encode.string "BadStatus" ) :: describe metadata ++ keep body)

        Http.GoodStatus_ metadata body ->
            case read body of
                Ok fields ->
                    Ok (describe metadata ++ fields)

                Err problem ->
                    Err (( "error", Encode.string "BadBody" ) :: ( "problem", Encode.string problem ) :: describe metadata)


describe : Http.Metadata -> Fields
describe metadata =
    [ ( "status", Encode.int metadata.statusCode )
    , ( "statusText", Encode.string metadata.statusText )
    , ( "url", Encode.string metadata.url )
    , ( "headers", Encode.dict identity Encode.string metadata.headers )
    ]


textFields : String -> Fields
textFields text =
    [ ( "body", Encode.string text ) ]


readJson : String -> Result String Fields
readJson text =
    Decode.decodeString Decode.value text
        |> Result.map (\json -> [ ( "json", json ) ])
        |> Result.mapError Decode.errorToString


{-| Bytes: how many, and the first eight.
-}
bytesFields : Bytes -> Fields
bytesFields bytes =
    [ ( "bytes", Encode.int (Bytes.width bytes) )
    , ( "first"
      , Bytes.Decode.decode (byteValues (min 8 (Bytes.width bytes))) bytes
            |> Maybe.withDefault []
            |> Encode.list Encode.int
      )
    ]


byteValues : Int -> Bytes.Decode.Decoder (List Int)
byteValues count =
    Bytes.Decode.loop ( count, [] )
        (\( left, values ) ->
            if left <= 0 then
                Bytes.Decode.succeed (Bytes.Decode.Done (List.reverse values))

            else
                Bytes.Decode.map (\value -> Bytes.Decode.Loop ( left - 1, value :: values )) Bytes.Decode.unsignedInt8
        )



-- DECODING A FETCH


fetchDecoder : Decoder Fetch
fetchDecoder =
    Decode.map8 Fetch
        (optional "method" Decode.string "GET")
        (Decode.field "url" Decode.string)
        (optional "headers" (Decode.list headerDecoder) [])
        bodyDecoder
        (optional "timeout" (Decode.map Just Decode.float) Nothing)
        (optional "expect" expectingDecoder ExpectString)
        (optional "task" Decode.bool False)
        (optional "tracker" (Decode.map Just Decode.string) Nothing)


fetch2Decoder : Decoder ( Fetch, Fetch )
fetch2Decoder =
    Decode.map2 Tuple.pair
        (Decode.field "first" fetchDecoder)
        (Decode.field "second" fetchDecoder)


{-| A field that may be left out, but must decode when it is there.
-}
optional : String -> Decoder a -> a -> Decoder a
optional name decoder fallback =
    Decode.maybe (Decode.field name Decode.value)
        |> Decode.andThen
            (\found ->
                case found of
                    Just _ ->
                        Decode.field name decoder

                    Nothing ->
                        Decode.succeed fallback
            )


headerDecoder : Decoder Http.Header
headerDecoder =
    Decode.map2 Http.header (Decode.index 0 Decode.string) (Decode.index 1 Decode.string)


{-| "bytes" (a list of byte values) wins over "body" (a text); neither is
an empty body.
-}
bodyDecoder : Decoder Http.Body
bodyDecoder =
    Decode.map2
        (\text bytes ->
            case ( text, bytes ) of
                ( _, Just values ) ->
                    Http.bytesBody "application/octet-stream"
                        (Bytes.Encode.encode (Bytes.Encode.sequence (List.map Bytes.Encode.unsignedInt8 values)))

                ( Just string, Nothing ) ->
                    Http.stringBody "text/plain" string

                ( Nothing, Nothing ) ->
                    Http.emptyBody
        )
        (optional "body" (Decode.map Just Decode.string) Nothing)
        (optional "bytes" (Decode.map Just (Decode.list Decode.int)) Nothing)


expectingDecoder : Decoder Expecting
expectingDecoder =
    Decode.string
        |> Decode.andThen
            (\name ->
                case name of
                    "string" ->
                        Decode.succeed ExpectString

                    "bytes" ->
                        Decode.succeed ExpectBytes

                    "json" ->
                        Decode.succeed ExpectJson

                    "whatever" ->
                        Decode.succeed ExpectWhatever

                    _ ->
                        Decode.fail ("expect must be string, bytes, json or whatever, not " ++ name)
            )


encodeProgress : Http.Progress -> Encode.Value
encodeProgress progress =
    case progress of
        Http.Sending { sent, size } ->
            Encode.object
                [ ( "sending", Encode.int sent )
                , ( "size", Encode.int size )
                ]

        Http.Receiving { received, size } ->
            Encode.object
                [ ( "receiving", Encode.int received )
                , ( "size", Maybe.map Encode.int size |> Maybe.withDefault Encode.null )
                ]
